"""One checkpoint of the evaluation matrix: a path, and what a foreign file does not record.

    checkpoints:
      simclr: runs/demo/simclr/backbone.pt                    # this project's file: a path
      moco_v2: {path: moco_v2_800ep.pth.tar, backbone: resnet50}
      dino: {path: dino_r50.pth, backbone: resnet50, prefix: student.module.backbone.,
             image_size: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}

``backbone`` and ``backbone_kwargs`` name the architecture of a file that does not;
``prefix`` picks the backbone's tensors when several sets fit (:mod:`selfsup.foreign`);
``image_size``, ``mean`` and ``std`` state the input format of a file that records none
(one that records them must agree). See ``docs/checkpoints.md``.
"""

from dataclasses import dataclass, field, fields

from selfsup.errors import ConfigurationError, is_finite, require


@dataclass(frozen=True)
class CheckpointEntry:
    path: str
    backbone: str | None = None
    backbone_kwargs: dict = field(default_factory=dict)
    prefix: str | None = None
    image_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    @classmethod
    def parse(cls, name: str, value) -> "CheckpointEntry":
        """The entry ``checkpoints.<name>``: a path, or a mapping of this class's fields."""
        key = f"checkpoints.{name}"
        if isinstance(value, str):
            require(bool(value.strip()), key, value, "the path of a backbone.pt, a Lightning checkpoint or a file")
            value = {"path": value}
        if not isinstance(value, dict):
            raise ConfigurationError(
                f"{key} must be a path or a mapping {{path: ..., backbone: ..., ...}}, got {value!r}."
            )
        known = [entry.name for entry in fields(cls)]
        unknown = sorted(str(key) for key in set(value) - set(known))
        if unknown:
            raise ConfigurationError(f"{key} has unknown key(s) {unknown}; the keys are {known}.")
        if "path" not in value:
            raise ConfigurationError(f"{key} needs a path: {{path: <file>, ...}}.")
        return cls(**value).checked(key)

    def checked(self, key: str) -> "CheckpointEntry":
        require(isinstance(self.path, str) and bool(self.path.strip()), f"{key}.path", self.path, "a file path")
        for name in ("backbone", "prefix"):
            value = getattr(self, name)
            require(value is None or isinstance(value, str) and bool(value), f"{key}.{name}", value, "a name")
        require(isinstance(self.backbone_kwargs, dict), f"{key}.backbone_kwargs", self.backbone_kwargs, "a mapping")
        require(
            self.backbone is not None or not self.backbone_kwargs,
            f"{key}.backbone_kwargs",
            self.backbone_kwargs,
            "given with the backbone they belong to",
        )
        size = self.image_size
        valid_size = size is None or isinstance(size, int) and not isinstance(size, bool) and 8 <= size <= 4096
        require(valid_size, f"{key}.image_size", size, "an integer in [8, 4096]")
        for name, positive in (("mean", False), ("std", True)):
            value = getattr(self, name)
            valid = value is None or (
                isinstance(value, (list, tuple))
                and len(value) == 3
                and all(is_finite(channel) and (channel > 0 or not positive) for channel in value)
            )
            require(valid, f"{key}.{name}", value, "three finite numbers" + (" > 0" if positive else ""))
        return self

    def stated_format(self) -> dict:
        """The input format the entry states: the keys among ``image_size``, ``mean``, ``std`` it gives."""
        stated = {"image_size": self.image_size, "mean": self.mean, "std": self.std}
        return {key: value for key, value in stated.items() if value is not None}
