"""How Lightning writes and reads this project's checkpoints.

:class:`SafeCheckpointIO` replaces Lightning's default for every ``selfsup fit``:

* writes are atomic (:func:`selfsup.checkpoints.atomic_save`): a run killed while
  writing ``last.ckpt`` leaves the previous ``last.ckpt`` readable;
* reads go through :func:`selfsup.checkpoints.read_checkpoint`: tensors and plain
  containers only (``weights_only``), so a file carrying pickled code is refused
  without running it, and a truncated file or one that is not a checkpoint is one
  clear message instead of an unpickling traceback.
"""

from pytorch_lightning.plugins.io import TorchCheckpointIO

from selfsup.checkpoints import atomic_save, read_checkpoint


class SafeCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        atomic_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return read_checkpoint(path)
