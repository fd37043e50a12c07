"""Data: Fashion-MNIST in memory, image folders and Hugging Face datasets (the ImageNet recipes), eval transforms.

Modules::

    transforms.py    a model's eval setting and the one eval transform built from it
    fashion_mnist.py Fashion-MNIST IDX files, in-memory batches and augmentation
    imagenet.py      image folders, webdataset/parquet shards and Hugging Face datasets: transforms, loaders, streaming
    loaders.py       a recipe's train and eval batches for one process (picks one of the two above)
"""

from fixnorm_zoo._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "EVAL_KEYS": "transforms",
        "eval_config": "transforms",
        "eval_transform": "transforms",
        "FASHION_MNIST_CLASSES": "fashion_mnist",
        "load_fashion_mnist": "fashion_mnist",
        "build_loaders": "loaders",
        "write_shards": "imagenet",
    },
)
