"""Caption data sets in every supported form, their errors, and the split by image."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from training.captioner.datasets import (
    CaptionedImage,
    DatasetError,
    clean_caption,
    detect_kind,
    load_dataset,
    read_coco,
    read_flickr,
    read_folder,
    split_dataset,
)


def touch(folder: Path, *names: str) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not read by the readers")


def as_dict(dataset) -> dict[str, tuple[str, ...]]:
    return {item.name: item.captions for item in dataset.items}


# --- COCO ----------------------------------------------------------------------------------


def coco(images, annotations) -> str:
    return json.dumps({"info": {}, "images": images, "annotations": annotations})


def test_coco(tmp_path: Path) -> None:
    touch(tmp_path / "imgs", "a.jpg", "b.jpg", "c.jpg")
    ann = tmp_path / "captions_train.json"
    ann.write_text(
        coco(
            [
                {"id": 1, "file_name": "a.jpg", "width": 4},
                {"id": 2, "file_name": "b.jpg"},
                {"id": 3, "file_name": "c.jpg"},  # no annotation
                {"id": 7, "file_name": "gone.jpg"},  # not on disk
            ],
            [
                {"id": 10, "image_id": 1, "caption": "A cat on a mat.\n"},
                {"id": 11, "image_id": 2, "caption": "  Two   dogs. "},
                {"id": 12, "image_id": 1, "caption": "A cat sleeping."},
                {"id": 13, "image_id": 2, "caption": "   "},  # empty: dropped
                {"id": 14, "image_id": 7, "caption": "A lost photo."},
            ],
        )
    )
    with pytest.warns(UserWarning, match=r"1 of 3 images are not in .*gone\.jpg"):
        data = read_coco(ann, tmp_path / "imgs")
    assert as_dict(data) == {
        "a.jpg": ("A cat on a mat.", "A cat sleeping."),
        "b.jpg": ("Two dogs.",),
    }
    assert data.items[0].path == tmp_path / "imgs" / "a.jpg"
    assert data.missing_images == ["gone.jpg"]
    assert (data.dropped_captions, data.uncaptioned_images) == (1, 1)
    assert data.summary()["captions"] == 3
    with pytest.raises(DatasetError, match=r"gone\.jpg"):
        read_coco(ann, tmp_path / "imgs", missing="error")


def test_coco_images_dir_is_found_beside_the_annotations(tmp_path: Path) -> None:
    touch(tmp_path / "train2014", "a.jpg")
    ann = tmp_path / "annotations" / "captions.json"
    ann.parent.mkdir()
    ann.write_text(coco([{"id": 1, "file_name": "a.jpg"}], [{"image_id": 1, "caption": "A."}]))
    with pytest.raises(DatasetError, match="none of the 1 images"):
        read_coco(ann)  # annotations/ holds no image
    (tmp_path / "captions.json").write_text(ann.read_text())
    data = load_dataset("auto", tmp_path / "captions.json")
    assert data.kind == "coco" and data.images_dir == tmp_path / "train2014"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"images": [], "annotations": [\n  {"image_id": 1,,}]}',
            r"captions.json:2: not valid JSON",
        ),
        ("[1, 2]", "no top-level object"),
        ('{"images": []}', "no 'annotations' list"),
        (coco([{"file_name": "a.jpg"}], []), r"images\[0\]: needs 'id' and 'file_name'"),
        (coco([{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}], []), "twice"),
        (coco([{"id": 1, "file_name": "a.jpg"}], [{"image_id": 1}]), r"annotations\[0\]"),
        (
            coco([{"id": 1, "file_name": "a.jpg"}], [{"image_id": 1, "caption": 5}]),
            "must be a string",
        ),
        (
            coco(
                [{"id": 1, "file_name": "a.jpg"}],
                [{"image_id": 1, "caption": "x"}] * 2 + [{"image_id": 9, "caption": "x"}],
            ),
            r"annotations\[2\]: image_id 9 is not in 'images'",
        ),
    ],
)
def test_coco_errors_name_file_and_entry(tmp_path: Path, content: str, message: str) -> None:
    touch(tmp_path, "a.jpg")
    ann = tmp_path / "captions.json"
    ann.write_text(content)
    with pytest.raises(DatasetError, match=message) as err:
        read_coco(ann, tmp_path)
    assert str(ann) in str(err.value)


def test_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        read_coco(tmp_path / "nope.json", tmp_path)
    with pytest.raises(DatasetError, match="no such file or directory"):
        load_dataset("auto", tmp_path / "nope.txt")
    with pytest.raises(DatasetError, match="no such directory"):
        load_dataset("coco", tmp_path / "nope.json", tmp_path / "no_images")


# --- Flickr --------------------------------------------------------------------------------


def test_flickr_token_file(tmp_path: Path) -> None:
    touch(tmp_path / "Flicker8k_Dataset", "1000_a.jpg", "1001_b.jpg")
    tokens = tmp_path / "Flickr8k.token.txt"
    tokens.write_text(
        "1000_a.jpg#0\tA child in a pink dress is climbing up a set of stairs .\n"
        "1000_a.jpg#1\tA girl going into a wooden building .\n"
        "\n"
        "1001_b.jpg#0\tA black dog and a spotted dog are fighting\r\n"
        "2258277193_586949ec62.jpg.1#0\tThe real token file names this missing image .\n"
        "1001_b.jpg#1\t .\n"
    )
    with pytest.warns(UserWarning, match=r"2258277193_586949ec62\.jpg\.1"):
        data = read_flickr(tokens)  # images found in the sub-directory
    assert data.kind == "flickr" and data.images_dir == tmp_path / "Flicker8k_Dataset"
    assert as_dict(data) == {
        "1000_a.jpg": (
            "A child in a pink dress is climbing up a set of stairs .",
            "A girl going into a wooden building .",
        ),
        "1001_b.jpg": ("A black dog and a spotted dog are fighting",),
    }
    assert data.dropped_captions == 1  # " ." has no word
    assert len(data.missing_images) == 1


@pytest.mark.parametrize(
    "bad_line",
    ["1000_a.jpg A caption without a tab", "1000_a.jpg\tA caption without #n", "#0\tno image"],
)
def test_flickr_malformed_token_line(tmp_path: Path, bad_line: str) -> None:
    touch(tmp_path, "1000_a.jpg")
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"1000_a.jpg#0\tA dog.\n\n{bad_line}\n")
    with pytest.raises(DatasetError, match=r"tokens\.txt:3: expected '<image>#<n><TAB>"):
        read_flickr(tokens, tmp_path)


def test_flickr30k_results_csv(tmp_path: Path) -> None:
    touch(tmp_path / "flickr30k_images", "1000092795.jpg", "2199200615.jpg")
    results = tmp_path / "results.csv"
    results.write_text(
        "image_name| comment_number| comment\n"
        "1000092795.jpg| 0| Two young guys with shaggy hair look at their hands .\n"
        "1000092795.jpg| 1| Two young , White males are outside near many bushes .\n"
        # The real file's one line without its second separator.
        "2199200615.jpg| 4 A dog runs across the grass .\n"
        "2199200615.jpg| 3| A dog | a pipe in a caption stays .\n",
        encoding="utf-8",
    )
    data = load_dataset("auto", results)
    assert data.kind == "flickr"
    assert as_dict(data) == {
        "1000092795.jpg": (
            "Two young guys with shaggy hair look at their hands .",
            "Two young , White males are outside near many bushes .",
        ),
        "2199200615.jpg": ("A dog runs across the grass .", "A dog | a pipe in a caption stays ."),
    }
    results.write_text(results.read_text() + "1000092795.jpg| two| Not a number .\n")
    with pytest.raises(DatasetError, match=r"results\.csv:6: expected '<image>\| <n>\| <caption>'"):
        read_flickr(results)


def test_kaggle_flickr8k_captions_csv(tmp_path: Path) -> None:
    touch(tmp_path / "Images", "1000_a.jpg")
    captions = tmp_path / "captions.txt"
    captions.write_text(
        "image,caption\n"
        '1000_a.jpg,"A child in a pink dress , climbing stairs ."\n'
        "1000_a.jpg,A girl going into a wooden building .\n"
        "1000_a.jpg,unquoted, with a comma\n"
    )
    data = read_flickr(captions)
    assert data.images_dir == tmp_path / "Images"
    assert as_dict(data)["1000_a.jpg"] == (
        "A child in a pink dress , climbing stairs .",
        "A girl going into a wooden building .",
        "unquoted, with a comma",
    )
    captions.write_text("image,caption\n1000_a.jpg,A dog.\nno caption here\n")
    with pytest.raises(DatasetError, match=r"captions\.txt:3"):
        read_flickr(captions, tmp_path / "Images")


def test_empty_caption_file(tmp_path: Path) -> None:
    (tmp_path / "tokens.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match="empty file"):
        read_flickr(tmp_path / "tokens.txt", tmp_path)


def test_wrong_images_dir_is_an_error_not_a_warning(tmp_path: Path) -> None:
    (tmp_path / "tokens.txt").write_text("a.jpg#0\tA dog.\nb.jpg#0\tA cat.\n")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(
        DatasetError, match=r"none of the 2 images .* is the images directory right"
    ):
        load_dataset("flickr", tmp_path / "tokens.txt", tmp_path / "elsewhere")


# --- a folder ------------------------------------------------------------------------------


def test_folder_with_sidecars_and_a_caption_list(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    touch(folder, "cat.jpg", "dog.PNG", "sub/bird.gif", "nothing.jpg", ".hidden/x.jpg", "notes.md")
    (folder / "cat.txt").write_text("A cat on a mat.\n\nA sleeping cat.\n")
    (folder / "sub" / "bird.txt").write_text("A bird on a branch.\n")
    (folder / "captions.tsv").write_text(
        "filename\tcaption\ndog.PNG\tA dog in the snow.\ncat.jpg\tA tabby cat.\n"
    )
    data = load_dataset("auto", folder)
    assert data.kind == "folder" and data.images_dir == folder
    assert as_dict(data) == {
        "cat.jpg": ("A cat on a mat.", "A sleeping cat.", "A tabby cat."),
        "dog.PNG": ("A dog in the snow.",),
        "sub/bird.gif": ("A bird on a branch.",),
    }
    assert data.uncaptioned_images == 1  # nothing.jpg
    assert data.items[2].path == folder / "sub" / "bird.gif"


def test_folder_caption_list_errors(tmp_path: Path) -> None:
    touch(tmp_path, "cat.jpg")
    (tmp_path / "captions.txt").write_text("cat.jpg\tA cat.\ngone.jpg\tA lost photo.\n")
    with pytest.warns(UserWarning, match=r"gone\.jpg"):
        data = read_folder(tmp_path)
    assert data.missing_images == ["gone.jpg"]
    with pytest.raises(DatasetError, match=r"gone\.jpg"):
        read_folder(tmp_path, missing="error")
    (tmp_path / "captions.txt").write_text("cat.jpg\tA cat.\ncat.jpg A cat without a tab.\n")
    with pytest.raises(DatasetError, match=r"captions\.txt:2: expected '<file name><TAB>"):
        read_folder(tmp_path)
    (tmp_path / "captions.txt").write_text("image,caption\ncat.jpg,A cat.\n")
    with pytest.raises(DatasetError, match="kind 'flickr'"):
        read_folder(tmp_path)


def test_folder_without_captions(tmp_path: Path) -> None:
    touch(tmp_path, "cat.jpg")
    with pytest.raises(DatasetError, match="no image with a caption"):
        read_folder(tmp_path)
    with pytest.raises(DatasetError, match="no such directory"):
        read_folder(tmp_path / "cat.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        read_folder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no images_dir"):
        load_dataset("folder", tmp_path, tmp_path / "empty")


def test_kind_detection_and_unknown_kind(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "a.token").write_text("")
    assert detect_kind(tmp_path) == "folder"
    assert detect_kind(tmp_path / "a.json") == "coco"
    assert detect_kind(tmp_path / "a.token") == "flickr"
    with pytest.raises(DatasetError, match="unknown data set kind 'voc'"):
        load_dataset("voc", tmp_path)


def test_clean_caption() -> None:
    assert clean_caption("  A  cat\ton a mat .\n") == "A cat on a mat ."
    assert clean_caption(" . , ") is None
    assert clean_caption("") is None


# --- the split -----------------------------------------------------------------------------


def items(n: int) -> list[CaptionedImage]:
    return [CaptionedImage(Path(f"{i}.jpg"), (f"photo {i}",), f"{i}.jpg") for i in range(n)]


def test_split_is_by_image_disjoint_and_deterministic() -> None:
    data = items(50)
    train, held = split_dataset(data, held_out=0.2, seed=3)
    assert len(held) == 10 and len(train) == 40
    assert not {i.name for i in train} & {i.name for i in held}
    assert {i.name for i in train} | {i.name for i in held} == {i.name for i in data}
    # The same seed gives the same split whatever the order of the file; another seed
    # another split.
    shuffled = data[:]
    random.Random(0).shuffle(shuffled)
    assert {i.name for i in split_dataset(shuffled, held_out=0.2, seed=3)[1]} == {
        i.name for i in held
    }
    assert split_dataset(data, held_out=0.2, seed=3) == (train, held)
    assert {i.name for i in split_dataset(data, held_out=0.2, seed=4)[1]} != {i.name for i in held}
    # Order is kept within each side.
    assert [i.name for i in train] == [i.name for i in data if i in train]


def test_split_sizes_and_errors() -> None:
    assert len(split_dataset(items(3), held_out=0.01, seed=0)[1]) == 1  # at least one
    assert split_dataset(items(3), held_out=0.0, seed=0) == (items(3), [])
    with pytest.raises(ValueError, match="cannot give"):
        split_dataset(items(1), held_out=0.5, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        split_dataset(items(4), held_out=1.0, seed=0)
    with pytest.raises(ValueError, match="appears twice"):
        split_dataset(items(2) + items(1), held_out=0.5, seed=0)


def test_an_image_named_twice_is_one_image(tmp_path: Path) -> None:
    touch(tmp_path, "a.jpg", "b.jpg")
    (tmp_path / "tokens.txt").write_text(
        "a.jpg#0\tA dog.\nb.jpg#0\tA cat.\n./a.jpg#1\tA brown dog.\n"
    )
    data = read_flickr(tmp_path / "tokens.txt", tmp_path)
    assert as_dict(data) == {"a.jpg": ("A dog.", "A brown dog."), "b.jpg": ("A cat.",)}
    train, held = split_dataset(data.items, held_out=0.5, seed=0)
    assert len(train) == len(held) == 1
