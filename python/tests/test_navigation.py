"""filter_pages: which pages of st.navigation a user gets (the rest are unreachable)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from streamlit_gatehouse import filter_pages


@dataclass(eq=False)
class FakePage:
    """The attributes of st.Page that filtering looks at."""

    title: str
    _url_path: str
    _default: bool = False

    @property
    def url_path(self) -> str:
        # Like Streamlit: the default page answers "" here.
        return "" if self._default else self._url_path


HOME = FakePage("Home", "home", _default=True)
REPORTS = FakePage("Reports", "reports")
ADMIN = FakePage("Admin", "admin")
PAGES = [HOME, REPORTS, ADMIN]
RULES = {"reports": ("analyst", "admin"), ADMIN: ["admin"]}


def titles(pages: object) -> object:
    if isinstance(pages, dict):
        return {section: [p.title for p in items] for section, items in pages.items()}
    return [p.title for p in pages]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["admin"], ["Home", "Reports", "Admin"]),
        (["analyst"], ["Home", "Reports"]),
        (["viewer"], ["Home"]),
        ([], ["Home"]),
        (["viewer", "analyst"], ["Home", "Reports"]),
    ],
)
def test_pages_follow_the_roles(roles: list[str], expected: list[str]) -> None:
    assert titles(filter_pages(PAGES, RULES, roles)) == expected


def test_sections_keep_their_shape_and_empty_ones_go() -> None:
    pages = {"Everyone": [HOME], "Work": [REPORTS], "Administration": [ADMIN]}
    assert titles(filter_pages(pages, RULES, ["analyst"])) == {"Everyone": ["Home"], "Work": ["Reports"]}
    assert titles(filter_pages(pages, RULES, ["admin"])) == {
        "Everyone": ["Home"],
        "Work": ["Reports"],
        "Administration": ["Admin"],
    }


def test_pages_are_named_by_object_url_path_or_title() -> None:
    for key in (ADMIN, "admin", "/admin/", "Admin"):
        assert titles(filter_pages(PAGES, {key: "admin"}, ["viewer"])) == ["Home", "Reports"], key


def test_default_page_is_named_by_its_own_url_path() -> None:
    assert HOME.url_path == ""
    assert titles(filter_pages(PAGES, {"home": ["staff"]}, ["viewer"])) == ["Reports", "Admin"]


def test_a_single_string_is_one_role_not_letters() -> None:
    assert titles(filter_pages(PAGES, {"admin": "admin"}, ["a", "d", "m", "i", "n"])) == ["Home", "Reports"]


def test_empty_role_list_allows_nobody() -> None:
    assert titles(filter_pages(PAGES, {"reports": []}, ["admin"])) == ["Home", "Admin"]


def test_page_named_twice_needs_both_rules() -> None:
    rules = {"Reports": ["analyst", "admin"], REPORTS: ["admin"]}
    assert titles(filter_pages(PAGES, rules, ["analyst"])) == ["Home", "Admin"]
    assert titles(filter_pages(PAGES, rules, ["admin"])) == ["Home", "Reports", "Admin"]


def test_unknown_page_name_is_an_error_not_an_open_door() -> None:
    with pytest.raises(ValueError, match="Admn"):
        filter_pages(PAGES, {"Admn": ["admin"]}, ["viewer"])
    with pytest.raises(ValueError):
        filter_pages(PAGES, {FakePage("Other", "other"): ["admin"]}, ["viewer"])


def test_no_rules_shows_every_page() -> None:
    assert filter_pages(PAGES, None, []) == PAGES
