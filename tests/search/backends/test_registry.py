import pytest

from sld.search import SearchError
from sld.search.backends import BACKENDS, BackendUnavailable, StructureBackend, get_backend


def test_none_means_no_backend():
    assert get_backend("none") is None


def test_operon_is_a_structure_backend():
    backend = get_backend("operon")
    assert isinstance(backend, StructureBackend)
    assert backend.name == "operon"


def test_unknown_name_lists_the_choices():
    message = r"Unknown backend 'opreon'\. Known: operon, pysr, none\. Did you mean 'operon'"
    with pytest.raises(SearchError, match=message):
        get_backend("opreon")  # type: ignore[arg-type]
    assert BACKENDS == ("operon", "pysr", "none")


def test_backend_unavailable_is_a_search_error():
    assert issubclass(BackendUnavailable, SearchError)
