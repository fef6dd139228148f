"""Data: MNIST, Fashion-MNIST, CIFAR-10 and your own image folders, as tensors.

torchvision's usual pipeline (a ``Dataset`` of PIL images, per-image
transforms, a ``DataLoader`` with worker processes) decodes and augments every
image on the CPU at every epoch: about 5.7k images/s on Colab's 2 CPUs, slower
than a T4 trains ResNet-20. This package does the work once instead:

1. ``load_arrays`` decodes a data set once into uint8 tensors (N x C x H x W)
   and caches them in ``cache_dir()``; later loads read the cache in a fraction
   of a second.
2. ``BatchLoader`` keeps a whole split in memory, on the GPU when there is one,
   and ``Augment`` crops and flips whole batches there, vectorised.
3. ``load`` puts it together: a ``DataBundle`` of train / validation / test
   loaders, with a seeded validation split held out from the training set.

Where ``load_arrays`` looks for a data set, in this order:

1. torchvision's own files under the data root (``data_root()``, i.e.
   ``$CNNBOOK_DATA``), read as they are, without writing there: decoded once,
   then read from their cache file in ``cache_dir()`` for as long as the files
   keep their sizes and dates;
2. the same under ``cache_dir()/downloads``, where downloads go when the data
   root is read-only;
3. an ImageFolder copy under the data root: an archive such as
   ``cifar10-jpeg.tar.gz`` or a folder ``cifar10/`` holding
   ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``;
4. a torchvision download (when ``download=True``) into the data root if it is
   writable, else into ``cache_dir()/downloads``; a failed download removes
   what it created.

If all of that fails, ``DataNotFoundError`` says what was looked for and how to
fix it. Any folder or archive of images works with ``load_image_folder`` and
``load("path/to/images")``: a reader can train on their own pictures.

The parts, one module each:

- ``augment``: random crops, flips and the PCA colour shift of whole batches
  (``Augment``);
- ``cache``: the decoded-array cache, keyed by the files it was built from;
- ``folders``: image folders and archives (``load_image_folder``);
- ``sources``: the named data sets, the data root, downloads (``load_arrays``);
- ``loader``: ``BatchLoader``, ``stratified_split``, ``DataBundle`` and
  ``load``.

Everything public is imported here: use ``cnnbook.data.load``, not the modules.
"""

from .augment import (
    Augment,
    crop,
    pca_lighting,
    pca_lighting_basis,
    random_crop,
    random_flip,
)
from .cache import cache_dir
from .folders import load_image_folder
from .loader import BatchLoader, DataBundle, load, stratified_split
from .sources import (
    DATASETS,
    DataNotFoundError,
    DatasetInfo,
    data_root,
    load_arrays,
)

__all__ = [
    "DATASETS",
    "Augment",
    "BatchLoader",
    "DataBundle",
    "DataNotFoundError",
    "DatasetInfo",
    "cache_dir",
    "crop",
    "data_root",
    "load",
    "load_arrays",
    "load_image_folder",
    "pca_lighting",
    "pca_lighting_basis",
    "random_crop",
    "random_flip",
    "stratified_split",
]
