"""The real datasets' catalogue: where each comes from (URL + checksum), its folder, and the files that prove it is here.

Checksums are the datasets' own: the md5s torchvision ships for CIFAR, VOC, Pets and Flowers, and the
SHA-1s published on cocodataset.org for COCO. Archives go to ``data_dir()/downloads`` and are
extracted (atomically) next to it, in the layout torchvision's dataset classes expect.
"""
from __future__ import annotations

from dataclasses import dataclass

from .cache import DataError

__all__ = ["RealDataset", "REAL", "ALIASES", "real_name", "LARGE_BYTES", "size_bytes", "is_large", "large_allowed", "ask_for_large"]


@dataclass(frozen=True)
class RealDataset:
    """One real dataset: archives (url, filename, 'algo:hex'), extraction folder, files that prove it is here."""

    title: str
    files: tuple[tuple[str, str, str], ...]
    folder: str  # relative to data_dir(); archives are extracted into it
    expect: tuple[str, ...]  # relative to folder
    size: str
    why: str


_VOC = "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/"
_COCO = "http://images.cocodataset.org/"
_PETS = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/"
_FLOWERS = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"

REAL: dict[str, RealDataset] = {
    "cifar10": RealDataset(
        "CIFAR-10", (("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
                      "md5:c58f30108f718f92721af3b95e74349a"),),
        ".", tuple(f"cifar-10-batches-py/{f}" for f in ("data_batch_1", "data_batch_2", "data_batch_3",
                                                        "data_batch_4", "data_batch_5", "test_batch", "batches.meta")),
        "163 MB", "60k 32x32 images in 10 classes: the classic small benchmark"),
    "cifar100": RealDataset(
        "CIFAR-100", (("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "cifar-100-python.tar.gz",
                       "md5:eb9058c3a382ffc7106e4002c42a8d85"),),
        ".", ("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"),
        "161 MB", "100 fine classes in 20 superclasses"),
    "voc": RealDataset(
        "Pascal VOC 2012 trainval", ((_VOC + "VOCtrainval_11-May-2012.tar", "VOCtrainval_11-May-2012.tar",
                                      "md5:6cd6e144f989b92b3379bac3b3de84fd"),),
        ".", ("VOCdevkit/VOC2012/JPEGImages", "VOCdevkit/VOC2012/Annotations",
              "VOCdevkit/VOC2012/SegmentationClass", "VOCdevkit/VOC2012/ImageSets/Main/train.txt"),
        "1.9 GB", "the reference detection + segmentation format (XML boxes, palette PNG masks), 20 classes"),
    "coco": RealDataset(
        "COCO 2017 val images + annotations",
        ((_COCO + "zips/val2017.zip", "val2017.zip", "sha1:4950dc9d00dbe1c933ee0170f5797584351d2a41"),
         (_COCO + "annotations/annotations_trainval2017.zip", "annotations_trainval2017.zip",
          "sha1:8551ee4bb5860311e79dace7e79cb91e432e78b3")),
        "coco", ("val2017", "annotations/instances_val2017.json", "annotations/captions_val2017.json"),
        "1 GB", "5k images with boxes, masks and 5 captions each: the smallest official set that has all three"),
    "pets": RealDataset(
        "Oxford-IIIT Pet", ((_PETS + "images.tar.gz", "pets-images.tar.gz", "md5:5c4f3ee8e5d25df40f4fd59a7f44e54c"),
                            (_PETS + "annotations.tar.gz", "pets-annotations.tar.gz",
                             "md5:95a8c909bbe2e81eed6a22bccdf3f68f")),
        "oxford-iiit-pet", ("images", "annotations/trainval.txt", "annotations/test.txt", "annotations/trimaps"),
        "800 MB", "37 breeds, ~7k photos, with trimaps: transfer learning and segmentation"),
    "flowers102": RealDataset(
        "Oxford Flowers-102", ((_FLOWERS + "102flowers.tgz", "102flowers.tgz", "md5:52808999861908f626f3c1f4e79d11fa"),
                               (_FLOWERS + "imagelabels.mat", "imagelabels.mat", "md5:e0620be6f572b9609742df49c70aed4d"),
                               (_FLOWERS + "setid.mat", "setid.mat", "md5:a5357ecc9cb78c4bef273ce3793fc85c")),
        "flowers-102", ("jpg", "imagelabels.mat", "setid.mat"),
        "330 MB", "102 fine-grained classes, 10 train images each: transfer learning from few examples"),
}
# Names lessons use -> the real dataset behind them.
ALIASES = {"voc_det": "voc", "voc_seg": "voc", "coco_det": "coco", "coco_seg": "coco", "captions": "coco",
           "pets_seg": "pets", "pets_box": "pets"}


def real_name(name: str) -> str:
    """Map a lesson's dataset name (e.g. 'voc_det') to its entry in :data:`REAL`."""
    key = ALIASES.get(name, name)
    if key not in REAL:
        known = ", ".join(sorted({*REAL, *ALIASES}))
        raise DataError(f"unknown dataset {name!r}: use one of {known}")
    return key


LARGE_BYTES = 10 ** 9  # a download over this starts only when asked for (course data download, $COURSE_ALLOW_LARGE)
_UNITS = {"KB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9}


def size_bytes(name: str) -> int:
    """The download size the catalogue states for ``name`` (e.g. "1.9 GB" -> 1_900_000_000)."""
    number, unit = REAL[real_name(name)].size.split()
    return round(float(number) * _UNITS[unit.upper()])


def is_large(name: str) -> bool:
    """True for a dataset whose download is over 1 GB (VOC): it needs the learner's go-ahead."""
    return size_bytes(name) > LARGE_BYTES


def large_allowed() -> bool:
    """The learner said yes to downloads over 1 GB: ``$COURSE_ALLOW_LARGE`` is 1/yes/true."""
    import os
    return os.environ.get("COURSE_ALLOW_LARGE", "").strip().lower() in ("1", "yes", "true")


def ask_for_large(name: str) -> str:
    """How to start a large download: the sentence the banner and the error show."""
    key = real_name(name)
    return (f"{REAL[key].title} is {REAL[key].size}: a download over 1 GB starts only when you ask for it. "
            f"Run `course data download {key}` in a terminal (or `!course data download {key}` in a cell), "
            "or set COURSE_ALLOW_LARGE=1 (in a cell: `import os; os.environ['COURSE_ALLOW_LARGE'] = '1'`, "
            "before the setup cell)")
