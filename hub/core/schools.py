"""Which school an object belongs to, and whether its agent may speak for that school."""

from __future__ import annotations

from dataclasses import dataclass

from hub.core.config import Agent, HubConfig
from hub.core.envelope import Action
from hub.core.errors import Access, SifError, access_error

_PUBLISH_CODE = {
    Action.ADD: Access.PUBLISH_ADD,
    Action.CHANGE: Access.PUBLISH_CHANGE,
    Action.DELETE: Access.PUBLISH_DELETE,
}


@dataclass(frozen=True)
class SchoolIndex:
    by_refid: dict[str, str]

    @classmethod
    def of(cls, config: HubConfig) -> SchoolIndex:
        return cls({s.school_info_refid: s.laestab for s in config.schools if s.school_info_refid})

    def named(self, refids: tuple[str, ...], laestabs: tuple[str, ...]) -> set[str]:
        return {self.by_refid[r] for r in refids if r in self.by_refid} | set(laestabs)


def choose_school(
    agent: Agent, named: set[str], remembered: str | None, action: Action | None
) -> str:
    """The object's school, or a category 4 refusal when the agent may not speak for it.

    Order: schools the object names; else the school remembered for its learner; else the
    agent's only school.
    """
    code = _PUBLISH_CODE.get(action, Access.RESPOND) if action else Access.RESPOND
    candidates = named or ({remembered} if remembered else set())
    if candidates:
        allowed = sorted(candidates & set(agent.schools))
        if not allowed:
            raise _refusal(code, agent.id, sorted(candidates))
        return allowed[0]
    if len(agent.schools) == 1:
        return agent.schools[0]
    raise access_error(Access.GENERIC, "Cannot tell which school this object belongs to")


def _refusal(code: Access, agent_id: str, schools: list[str]) -> SifError:
    return access_error(code, f"Agent {agent_id} may not publish for school {', '.join(schools)}")
