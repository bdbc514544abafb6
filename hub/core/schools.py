"""Which school an object belongs to, and whether its agent may speak for that school.

Rules, for every path an object enters by (events, responses):
- every school the object names (a SchoolInfo RefId, or a DfE LA + establishment number)
  must be one the hub knows, and one the agent is bound to; otherwise the object is refused
  (4/10, 4/11 or 4/12 for Add, Change or Delete events, 4/6 for responses);
- an object that names no school belongs to a school its learner is known at, if the agent
  speaks for one of them; a learner known only at other schools is refused;
- an object about no known learner, naming no school, belongs to the agent's only school
  (an agent bound to several schools must name one).
Only what an object itself shows binds a learner to a school (see hub.pipeline.ingest).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.core.config import Agent, HubConfig
from hub.core.envelope import Action
from hub.core.errors import Access, SifError, access_error

_PUBLISH_CODE = {
    Action.ADD: Access.PUBLISH_ADD,
    Action.CHANGE: Access.PUBLISH_CHANGE,
    Action.DELETE: Access.PUBLISH_DELETE,
}


@dataclass(frozen=True, kw_only=True)
class Named:
    """The schools an object names: DfE numbers the hub knows (document order), and how
    many references it could not resolve."""

    known: tuple[str, ...] = ()
    unknown: int = 0


@dataclass(frozen=True, kw_only=True)
class Routing:
    """The school an object is routed as, and every school it names (each must allow it)."""

    school: str
    schools: tuple[str, ...]


@dataclass(frozen=True)
class SchoolIndex:
    by_refid: dict[str, str]
    laestabs: frozenset[str]

    @classmethod
    def of(cls, config: HubConfig) -> SchoolIndex:
        return cls(
            {s.school_info_refid: s.laestab for s in config.schools if s.school_info_refid},
            frozenset(s.laestab for s in config.schools),
        )

    def named(self, refids: Iterable[str], laestabs: Iterable[str]) -> Named:
        known: dict[str, None] = {}
        unknown = 0
        for refid in refids:
            if refid.upper() in self.by_refid:
                known[self.by_refid[refid.upper()]] = None
            else:
                unknown += 1
        for laestab in laestabs:
            if laestab in self.laestabs:
                known[laestab] = None
            else:
                unknown += 1
        return Named(known=tuple(known), unknown=unknown)


def choose_school(
    agent: Agent, named: Named, learner_schools: frozenset[str], action: Action | None
) -> Routing:
    """The object's routing, or a category 4 refusal (module docstring for the rules)."""
    code = _PUBLISH_CODE.get(action, Access.RESPOND) if action else Access.RESPOND
    mine = set(agent.schools)
    if named.unknown:
        raise access_error(
            code, f"The object names {named.unknown} school(s) this hub does not know"
        )
    if named.known:
        foreign = [s for s in named.known if s not in mine]
        if foreign:
            raise _refusal(code, agent.id, foreign)
        return Routing(school=named.known[0], schools=named.known)
    if learner_schools:
        allowed = sorted(learner_schools & mine)
        if not allowed:
            raise access_error(code, f"Agent {agent.id} may not publish for this learner's school")
        return Routing(school=allowed[0], schools=(allowed[0],))
    if len(agent.schools) == 1:
        return Routing(school=agent.schools[0], schools=(agent.schools[0],))
    raise access_error(Access.GENERIC, "Cannot tell which school this object belongs to")


def _refusal(code: Access, agent_id: str, schools: list[str]) -> SifError:
    return access_error(code, f"Agent {agent_id} may not publish for school {', '.join(schools)}")
