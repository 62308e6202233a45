"""Keep the console to what matters: no advertisements or third-party deprecation notices.

Only messages of libraries are silenced, each by its text; this project's own warnings
and Lightning's warnings about the run itself stay.
"""

import logging
import warnings

_SILENCED_WARNINGS = (
    r".*`tensorboardX` has been removed as a dependency.*",  # Lightning's default-logger notice
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # torch deprecation inside Lightning
    r".*The `srun` command is available on your system but is not used.*",  # we launch srun ourselves
    r".*module\(s\) in eval mode.*",  # frozen backbones of the linear probe, on purpose
    r".*LightningCLI's args parameter is intended to run from within Python.*",  # we pass the arguments on
)
_SILENCED_INFO = ("💡 Tip:", "Loading `train_dataloader` to estimate")
_LIGHTNING_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
)


class _DropMessages(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_SILENCED_INFO)


_DROP_MESSAGES = _DropMessages()


def quiet_third_party() -> None:
    """Idempotent: a second call (another command in the same process) adds nothing."""
    for pattern in _SILENCED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).addFilter(_DROP_MESSAGES)
