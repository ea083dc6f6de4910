"""A project's class list: validation, sources (typed, labels files, labelme), class edits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.annotation.class_sources import (
    classes_from_file,
    classes_from_labelme,
    classes_from_text,
    labelme_files_beside,
)
from core.annotation.classes import (
    ClassEdit,
    ClassListError,
    ProjectClass,
    add_class,
    add_classes,
    check_classes,
    class_key,
    delete_class,
    make_classes,
    map_by_name,
    merge_classes,
    move_class,
    recolor_class,
    rename_class,
    undo_edit,
)
from core.data.palette import VOC_PALETTE, VOID
from core.errors import DatasetError

NAMES = ["background", "cat", "dog", "bird"]


def voc(i: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in VOC_PALETTE[i])


def test_names_get_voc_colors_and_odd_names_are_kept() -> None:
    odd = ["_background_", "Ünïcödé 猫", "a b  c", "x/y\\z", "semi;colon", "'quoted'",
           "tab\u00a0nbsp", "x" * 100]
    classes = make_classes(odd)
    assert [c.name for c in classes] == odd
    assert [c.color for c in classes] == [voc(i) for i in range(len(odd))]
    assert make_classes(["__ignore__", "_background_", "cat"])[0].name == "_background_"
    assert make_classes(["  cat  "])[0].name == "cat"


@pytest.mark.parametrize(("names", "message"), [
    ([], "at least one class"),
    (["cat", ""], "empty"),
    (["cat", "   "], "empty"),
    (["cat", "cat"], "'cat' is named twice"),
    (["Cat", "cat"], "differ only in case"),
    (["_background_", "background"], "differ only in case, underscores"),
    (["cat", "li\nne"], "line break"),
    (["cat", "#hash"], "comment"),
    (["__ignore__x", "__ignore__"], "void label"),
    (["x" * 101], "at most 100"),
    ([f"c{i}" for i in range(256)], "at most 255"),
    ([3], "must be text"),
])
def test_bad_class_lists_are_clear_errors(names: list, message: str) -> None:
    with pytest.raises(ClassListError, match=message) as info:
        make_classes(names)
    assert isinstance(info.value, DatasetError) and "\n" not in str(info.value)


def test_255_classes_is_the_limit() -> None:
    classes = make_classes([f"c{i}" for i in range(255)])
    assert len(classes) == 255 and classes[254].color == voc(254)
    with pytest.raises(ClassListError, match="at most 255"):
        add_class(classes, "one too many")


@pytest.mark.parametrize("color", [(0, 0), (0, 0, 256), (-1, 0, 0), "red", (1.5, 0, 0), None,
                                   (True, 0, 0)])
def test_bad_colors(color: object) -> None:
    with pytest.raises(ClassListError, match="three integers"):
        make_classes(["cat"], [color])


def test_class_key_and_map_by_name() -> None:
    assert class_key("_Background_") == class_key("background") == "background"
    assert class_key(" Potted_Plant ") == "potted plant"
    lut = map_by_name(["background", "Dog", "horse", "cat"], ["_background_", "cat", "dog"])
    assert lut[:4].tolist() == [0, 2, VOID, 1] and lut[4] == VOID and lut[VOID] == VOID


def test_add_rename_recolor_change_no_label() -> None:
    classes = make_classes(NAMES)
    edit = add_class(classes, "fish")
    assert [c.name for c in edit.after] == [*NAMES, "fish"] and not edit.renumbers
    assert edit.after[-1].color not in [c.color for c in classes]
    assert add_class(classes, "fish", (1, 2, 3)).after[-1].color == (1, 2, 3)
    with pytest.raises(ClassListError, match="differ only in case"):
        add_class(classes, "CAT")
    edit = add_classes(classes, ["fish", "eel"])
    assert [c.name for c in edit.after][-2:] == ["fish", "eel"] and not edit.renumbers
    assert len({c.color for c in edit.after}) == 6 and "labels 4..5" in edit.description
    with pytest.raises(ClassListError, match="named twice"):
        add_classes(classes, ["fish", "fish"])
    edit = rename_class(classes, 1, "kitten")
    assert edit.after[1] == ProjectClass("kitten", classes[1].color) and not edit.renumbers
    with pytest.raises(ClassListError, match="named twice"):
        rename_class(classes, 1, "dog")
    with pytest.raises(ClassListError, match="empty"):
        rename_class(classes, 1, " ")
    edit = recolor_class(classes, 2, (9, 8, 7))
    assert edit.after[2].color == (9, 8, 7) and not edit.renumbers
    with pytest.raises(ClassListError, match="no class 9"):
        recolor_class(classes, 9, (9, 8, 7))


def test_move_merge_delete_renumber() -> None:
    classes = make_classes(NAMES)
    labels = np.array([0, 1, 2, 3, VOID], np.uint8)

    move = move_class(classes, 3, 1)  # bird to label 1: cat 1->2, dog 2->3
    assert [c.name for c in move.after] == ["background", "bird", "cat", "dog"]
    assert move.lut[labels].tolist() == [0, 2, 3, 1, VOID]
    assert move.moves() == [("bird", 3, 1), ("cat", 1, 2), ("dog", 2, 3)]
    assert "renumbered 'bird' 3→1, 'cat' 1→2, 'dog' 2→3" in move.summary()
    assert move.inverse_lut()[move.lut[labels]].tolist() == labels.tolist()

    merge = merge_classes(classes, 1, 2)  # cat into dog
    assert [c.name for c in merge.after] == ["background", "dog", "bird"]
    assert merge.lut[labels].tolist() == [0, 1, 1, 2, VOID]
    assert merge.summary().startswith("Merged 'cat' into 'dog'; renumbered 'dog' 2→1")
    with pytest.raises(ClassListError, match="into itself"):
        merge_classes(classes, 1, 1)

    void = delete_class(classes, 2)  # dog: void
    assert [c.name for c in void.after] == ["background", "cat", "bird"]
    assert void.lut[labels].tolist() == [0, 1, VOID, 2, VOID]
    into = delete_class(classes, 2, into=0)
    assert into.kind == "delete" and into.lut[labels].tolist() == [0, 1, 0, 2, VOID]
    assert "became 'background'" in into.description
    with pytest.raises(ClassListError, match="at least one class"):
        delete_class(make_classes(["only"]), 0)


def test_undo_edit_and_round_trip_through_json() -> None:
    classes = make_classes(NAMES)
    merge = merge_classes(classes, 1, 2)
    undo = undo_edit(merge)
    assert undo.before == merge.after and undo.after == merge.before
    assert undo.lut[:3].tolist() == [0, 2, 3]  # dog back to 2, bird back to 3
    again = ClassEdit.from_dict(json.loads(json.dumps(merge.to_dict())))
    assert again.after == merge.after and np.array_equal(again.lut, merge.lut)
    assert again.origin == merge.origin and again.description == merge.description
    with pytest.raises(ClassListError, match="Not a class edit"):
        ClassEdit.from_dict({"kind": "x"})
    assert check_classes(merge.after) == merge.after


def test_classes_from_text_and_files(tmp_path: Path) -> None:
    assert [c.name for c in classes_from_text("\n cat \n# note\n\ndog\n")] == ["cat", "dog"]
    with pytest.raises(ClassListError, match="at least one"):
        classes_from_text("\n  \n")
    labels = tmp_path / "labels.txt"
    labels.write_text("__ignore__\n_background_\nperson\ncar\n", encoding="utf-8")
    assert [c.name for c in classes_from_file(labels)] == ["_background_", "person", "car"]
    (tmp_path / "dup.txt").write_text("cat\ndog\ncat\n", encoding="utf-8")
    with pytest.raises(ClassListError, match="repeats cat"):
        classes_from_file(tmp_path / "dup.txt")
    (tmp_path / "case.txt").write_text("cat\nCat\n", encoding="utf-8")
    with pytest.raises(ClassListError, match=r"case\.txt: The class .Cat."):
        classes_from_file(tmp_path / "case.txt")
    (tmp_path / "many.txt").write_text("".join(f"c{i}\n" for i in range(300)))
    with pytest.raises(ClassListError, match="300 classes"):
        classes_from_file(tmp_path / "many.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ClassListError):
        classes_from_file(tmp_path / "bin.txt")
    with pytest.raises(ClassListError, match="missing"):
        classes_from_file(tmp_path / "missing.txt")


def test_classes_gathered_from_labelme_files(tmp_path: Path) -> None:
    def lm(name: str, labels: list[str]) -> Path:
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps({"shapes": [{"label": x, "points": [[0, 0]]} for x in labels]}))
        (tmp_path / f"{name}.png").write_bytes(b"")
        return p

    lm("a", ["person", "car", "__ignore__"])
    lm("b", ["Tree", "person", "_background_"])
    (tmp_path / "c.json").write_text("{not json")
    (tmp_path / "c.png").write_bytes(b"")
    files = labelme_files_beside(sorted(tmp_path.glob("*.png")))
    assert [f.name for f in files] == ["a.json", "b.json", "c.json"]
    classes, problems = classes_from_labelme(files)
    assert [c.name for c in classes] == ["_background_", "car", "person", "Tree"]
    assert len(problems) == 1 and "c.json" in problems[0]
    with pytest.raises(ClassListError, match="No labelme"):
        classes_from_labelme([])
