"""STL-10 from a directory the user already has.

Pretraining uses 'train+unlabeled' (105,000 images; the 100,000 unlabelled ones
carry label -1, which the online linear probe ignores); the kNN bank is the 5,000
labelled training images and validation is the 8,000-image test split.
"""

import torchvision

from selfsup.data.base import PretrainDataModule, require_directory


class STL10DataModule(PretrainDataModule):
    mean = (0.4408, 0.4279, 0.3867)
    std = (0.2682, 0.2610, 0.2686)
    num_classes = 10

    def __init__(self, data_dir: str, image_size: int = 96, knn_bank_size: int | None = None, **kwargs) -> None:
        """STL-10's native 96 px; the 5,000 labelled training images as bank.

        Args:
            data_dir: the folder holding the extracted binary version of STL-10 (``stl10_binary``).
            image_size: the side of the square views.
            knn_bank_size: at most this many labelled images in the kNN bank (``None``: all).
        """
        super().__init__(image_size=image_size, knn_bank_size=knn_bank_size, **kwargs)
        self.data_dir = require_directory(
            data_dir,
            "STL-10 data",
            "Pass --data.data_dir pointing at the folder that holds 'stl10_binary' "
            "(torchvision.datasets.STL10(root, download=True) on a machine with internet access creates it).",
        )
        require_directory(
            self.data_dir / "stl10_binary",
            "STL-10 data",
            f"The folder {self.data_dir} exists but lacks 'stl10_binary': extract the binary version of STL-10 there.",
        )

    def raw_splits(self):
        root = str(self.data_dir)
        stl = torchvision.datasets.STL10
        return stl(root, split="train+unlabeled"), stl(root, split="train"), stl(root, split="test")
