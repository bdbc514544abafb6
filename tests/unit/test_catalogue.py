from hub.core.objects import CATALOGUE
from hub.sif.schemas import load_schemas


def test_catalogue_and_schemas_know_the_same_objects() -> None:
    assert set(CATALOGUE) == set(load_schemas().object_names())
