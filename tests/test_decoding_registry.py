"""`decoding.registry.Registry`: the name -> implementation table every package uses."""

from collections.abc import Mapping

import pytest

from decoding import PROCESSORS, STRATEGIES, Registry, UnknownNameError
from decoding.registry import Registry as DefinedRegistry


def _filled() -> Registry[object]:
    colours = Registry("colour")
    colours.register("red", 1)  # the direct form

    @colours.register("green")  # the decorator form, on a function
    def green():
        return 2

    @colours.register("blue")  # ... and on a class
    class Blue:
        pass

    return colours


def test_the_package_exports_the_defining_modules_class():
    assert Registry is DefinedRegistry
    assert isinstance(PROCESSORS, Registry) and isinstance(STRATEGIES, Registry)


@pytest.mark.parametrize(
    "check",
    [
        lambda r: r["red"] == 1,
        lambda r: r["green"]() == 2,
        lambda r: r["blue"].__name__ == "Blue",
        lambda r: list(r) == ["red", "green", "blue"],  # iteration: registration order
        lambda r: r.names() == ["blue", "green", "red"],  # names(): sorted
        lambda r: len(r) == 3,
        lambda r: "red" in r and "purple" not in r and 1 not in r,
        lambda r: dict(r.items())["red"] == 1 and r.get("purple") is None,
        lambda r: isinstance(r, Mapping),
        lambda r: r.kind == "colour",
        lambda r: "colour" in repr(r) and "blue" in repr(r),
    ],
    ids=[
        "direct",
        "decorated-function",
        "decorated-class",
        "iter-order",
        "names-sorted",
        "len",
        "contains",
        "mapping-methods",
        "is-mapping",
        "kind",
        "repr",
    ],
)
def test_registry_behaves_like_a_read_only_mapping(check):
    assert check(_filled())


def test_decorator_and_direct_forms_return_what_they_register():
    registry = Registry("thing")

    def f():
        pass

    assert registry.register("f")(f) is f
    assert registry.register("g", f) is f
    assert registry["f"] is registry["g"] is f


def test_duplicate_names_are_rejected_naming_the_name_and_the_existing_entry():
    colours = _filled()
    with pytest.raises(ValueError, match=r"colour name 'red' is already registered to 1"):
        colours.register("red", 5)
    with pytest.raises(ValueError, match=r"'green' is already registered to <function"):
        colours.register("green")(lambda: 3)
    assert colours["red"] == 1 and colours["green"]() == 2  # the first entry stays


@pytest.mark.parametrize("name", ["", None, 3])
def test_names_are_non_empty_strings(name):
    with pytest.raises(TypeError, match="colour name must be a non-empty string"):
        Registry("colour").register(name, 1)


def test_unknown_name_names_the_kind_the_name_and_the_known_names():
    colours = _filled()
    with pytest.raises(UnknownNameError) as err:
        colours["purple"]
    message = "unknown colour 'purple'; known: blue, green, red"
    assert str(err.value) == message  # not quoted, as KeyError's own str would be
    assert (err.value.kind, err.value.name, err.value.known) == (
        "colour",
        "purple",
        ["blue", "green", "red"],
    )
    # both a KeyError (a failed lookup) and a ValueError (a bad argument value)
    for cls in (KeyError, ValueError, LookupError):
        with pytest.raises(cls, match=message):
            colours["purple"]
    with pytest.raises(KeyError, match=r"known: \(none\)"):
        Registry("empty")["x"]


def test_registry_is_read_only():
    colours = _filled()
    with pytest.raises(TypeError):
        colours["purple"] = 4
    with pytest.raises(TypeError):
        del colours["red"]
    for method in ("update", "pop", "clear", "setdefault", "__setitem__", "__delitem__"):
        assert not hasattr(colours, method)


def test_entries_and_on_register():
    seen = []
    registry = Registry(
        "thing", {"a": 1, "b": 2}, on_register=lambda name, obj: seen.append((name, obj))
    )
    registry.register("c", 3)
    assert list(registry.items()) == [("a", 1), ("b", 2), ("c", 3)]
    assert seen == [("a", 1), ("b", 2), ("c", 3)]


def test_registry_is_generic():
    typed: Registry[int] = Registry[int]("number")
    typed.register("one", 1)
    assert typed["one"] == 1
