"""Task2Vec: a task as the diagonal Fisher information of a fixed probe network, and distances between tasks.

Achille, Lam, Tewari, Ravichandran, Maji, Fowlkes, Soatto, Perona, "Task2Vec: Task Embedding
for Meta-Learning", ICCV 2019; Matsui & Kumagai, *Transfer Learning*, ch. 6, §6.2.4,
eqs. 6.16-6.18. A task is n images x_i with labels y_i in C classes. The probe phi_w (a
backbone: ``probe(images)`` is an N x D feature matrix) stays fixed; a linear head
(H, c), C x D and C, is fitted on its features, and the model's predictive distribution is

    p_w(y | x) = softmax(H phi_w(x) + c)_y.

The task's embedding is the diagonal of the Fisher information of the probe's weights w under
that distribution (eq. 6.16), with the labels drawn from the model itself, not the data:

    F = 1/n sum_i E_{y ~ p_w(y | x_i)} [ (d/dw log p_w(y | x_i))^2 ]         (elementwise square)

and one number per filter (eq. 6.17): F averaged over the inputs of each output channel of a
convolution (weight out x in x k..., averaged over in x k...) or of each output unit of a
linear layer (weight out x in, averaged over in). The distance of two tasks is the
symmetric normalised cosine distance (eq. 6.18)

    d(F_a, F_b) = 1 - cos( F_a / (F_a + F_b), F_b / (F_a + F_b) )            (elementwise division)

in [0, 1]: 0 for identical embeddings (and for any F_b = s F_a, s > 0: the distance ignores
scale), symmetric in a and b. Entries with F_a + F_b = 0 (a filter that no input of either
task reaches, such as a dead unit) are left out of the cosine; they say nothing about either
task.

Choices, none of them the paper's only option:

- Filters: the ``weight`` of every ``nn.Conv1d``, ``nn.Conv2d``, ``nn.Conv3d`` and ``nn.Linear``
  of the probe, in ``named_modules`` order; biases, norm layers and the head are left out.
  The probe must have at least one.
- The probe is deep-copied and runs in eval mode (batch norm on its running statistics),
  in ``dtype`` (float64 by default); the probe handed in is never changed.
- Head: multinomial logistic regression on the probe's features, cross-entropy (mean over
  the samples) plus ``head_weight_decay / 2 * ||H||^2`` (c not decayed), minimised from
  zero by full-batch L-BFGS (strong-Wolfe line search, at most ``head_steps`` iterations).
  The problem is convex, so the fit is deterministic and needs no seed; the weight decay
  keeps it bounded when the classes separate (without it p -> one-hot and F -> 0).
- Expectation over y: with ``samples=None`` (the default) the exact sum over the classes,
  sum_y p_w(y | x) (d/dw log p_w(y | x))^2, which costs one backward pass per class and is
  the better choice for a few dozen classes; with ``samples=S`` the paper's Monte Carlo
  estimate, S labels drawn from p_w(. | x_i) per image with a CPU generator seeded by ``seed``.
- Gradients: with z the logits, d/dw log p_w(y | x) = J_w(z)^T (onehot(y) - p), one
  vector-Jacobian product per label after one forward pass per image, vectorised over the
  images of a batch by ``torch.func`` (``functional_call``, ``vjp``, ``vmap``); a batch holds
  ``batch_size`` per-image graphs at once. Where ``vmap`` fails (a probe it cannot vectorise,
  or memory running out), the rest falls back, with a warning, to one image at a time
  through ``torch.autograd``; the result is the same.
- Options: ``head_steps`` in [1, 100000], ``samples`` None or in [1, 10000], ``batch_size`` >= 1
  (more than N is N), ``head_weight_decay`` finite >= 0, ``seed`` in [0, 2**63); booleans are
  refused wherever a number is asked for.
- The paper's "robust" Fisher (a variational estimate over perturbed weights) is not used:
  F is the plain Fisher at the probe's weights.

The embedding is a float64 CPU tensor of one entry per filter; :func:`task_distance` and
:func:`task_distances` compare embeddings of the same probe.
"""

import copy
import math
import warnings
from collections.abc import Mapping
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vjp, vmap

from downstream.transferability._checks import (
    as_numpy,
    class_indices,
    is_integer,
    require_option,
)
from selfsup.errors import ConfigurationError

FILTER_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
DTYPES = (torch.float32, torch.float64)

#: Upper bounds of the options, far above any useful value; they catch a typo before it runs for days.
MAX_HEAD_STEPS = 100_000
MAX_SAMPLES = 10_000

_SCORE = "task2vec"


def _is_non_negative_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _check_dtype(dtype) -> None:
    require_option(dtype in DTYPES, _SCORE, "dtype", dtype, "torch.float32 or torch.float64")


def filter_names(probe: nn.Module) -> list[str]:
    """The names of the probe's filter weights (``"<module>.weight"``), in the order of the embedding.

    A weight shared by several layers counts once, under its first name (as ``named_parameters`` does).
    """
    names, seen = [], set()
    for name, module in probe.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, FILTER_LAYERS) and isinstance(weight, nn.Parameter) and id(weight) not in seen:
            seen.add(id(weight))
            names.append(f"{name}.weight" if name else "weight")
    return names


def _checked_probe(probe, dtype) -> tuple[nn.Module, list[str]]:
    """An eval-mode deep copy of the probe in ``dtype`` and its filter names; refuses a probe without filters."""
    if not isinstance(probe, nn.Module):
        raise ConfigurationError(f"{_SCORE}: probe must be a torch.nn.Module, got {type(probe).__name__}.")
    _check_dtype(dtype)
    names = filter_names(probe)
    if not names:
        raise ConfigurationError(
            f"{_SCORE}: probe must have at least one Conv1d/2d/3d or Linear weight (its filters), "
            f"got {type(probe).__name__} with none."
        )
    model = copy.deepcopy(probe).to(dtype).eval()
    return model, names


def _checked_images(images, dtype) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ConfigurationError(f"{_SCORE}: images must be a floating-point tensor, got {type(images).__name__}.")
    if images.ndim < 2 or images.shape[0] < 2:
        raise ConfigurationError(
            f"{_SCORE}: images must have N >= 2 samples along the first of at least 2 dimensions "
            f"(N x C x H x W), got shape {tuple(images.shape)}."
        )
    finite = torch.isfinite(images.detach()).flatten(1).all(dim=1)
    if not finite.all():
        raise ConfigurationError(
            f"{_SCORE}: images must be finite, got NaN or infinite values in "
            f"{int((~finite).sum())} of {len(images)} images."
        )
    return images.detach().to(dtype)


def _checked_batch_size(batch_size) -> None:
    valid = is_integer(batch_size) and batch_size >= 1
    require_option(valid, _SCORE, "batch_size", batch_size, "an integer >= 1")


def _checked_samples(samples) -> None:
    valid = samples is None or (is_integer(samples) and 1 <= samples <= MAX_SAMPLES)
    expected = f"None (exact expectation over the classes) or an integer in [1, {MAX_SAMPLES}]"
    require_option(valid, _SCORE, "samples", samples, expected)


def _checked_seed(seed) -> None:
    valid = is_integer(seed) and 0 <= seed < 2**63
    require_option(valid, _SCORE, "seed", seed, "an integer in [0, 2**63)")


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _features(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The probe's features of every image (N x D), batch by batch, without gradients."""
    device = _device_of(model)
    with torch.no_grad():
        features = torch.cat([model(batch.to(device)) for batch in images.split(batch_size)])
    if features.ndim != 2 or features.shape[0] != len(images):
        raise ConfigurationError(
            f"{_SCORE}: probe must return N x D features for N images, got shape {tuple(features.shape)} "
            f"for {len(images)} images."
        )
    if not torch.isfinite(features).all():
        raise ConfigurationError(f"{_SCORE}: probe must return finite features, got NaN or infinite values.")
    return features


def fit_head(features, labels, *, head_steps: int = 100, head_weight_decay: float = 1e-3) -> nn.Linear:
    """A linear head (D -> C) fitted to features (N x D) for labels (N,) by L-BFGS; see the module docstring.

    The labels may take any values; class k of the head is the k-th smallest label value.
    The head has the features' floating dtype and device.
    """
    if not isinstance(features, torch.Tensor) or not features.is_floating_point() or features.ndim != 2:
        raise ConfigurationError(
            f"{_SCORE}: features must be a 2-D floating-point tensor (N x D), got "
            f"{type(features).__name__} of shape {tuple(getattr(features, 'shape', ()))}."
        )
    if not torch.isfinite(features).all():
        raise ConfigurationError(f"{_SCORE}: features must be finite, got NaN or infinite values.")
    classes, sizes = class_indices(labels, len(features), _SCORE)
    valid_steps = is_integer(head_steps) and 1 <= head_steps <= MAX_HEAD_STEPS
    require_option(valid_steps, _SCORE, "head_steps", head_steps, f"an integer in [1, {MAX_HEAD_STEPS}]")
    valid_decay = _is_non_negative_number(head_weight_decay)
    require_option(valid_decay, _SCORE, "head_weight_decay", head_weight_decay, "a finite number >= 0")
    features = features.detach()
    targets = torch.as_tensor(classes, dtype=torch.long, device=features.device)
    head = nn.Linear(features.shape[1], len(sizes), dtype=features.dtype, device=features.device)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    optimizer = torch.optim.LBFGS(
        head.parameters(),
        lr=1.0,
        max_iter=head_steps,
        max_eval=2 * head_steps,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(head(features), targets) + head_weight_decay / 2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    head.zero_grad(set_to_none=True)
    return head.requires_grad_(False)


def _per_filter(gradient: torch.Tensor) -> torch.Tensor:
    """Squared gradient of one weight averaged over everything but its output dimension."""
    return gradient.pow(2).flatten(1).mean(dim=1)


def _fisher_vmap(model, names, weight, bias, images, targets, exact) -> dict[str, torch.Tensor]:
    """Per-filter Fisher of each image of a batch, summed over the batch, vectorised by torch.func."""
    state = {name: tensor.detach() for name, tensor in model.named_parameters()}
    state.update((name, tensor.detach()) for name, tensor in model.named_buffers())
    filters = {name: state.pop(name) for name in names}

    def one_image(filters, image, image_targets):
        def logits_of(filters):
            features = functional_call(model, {**state, **filters}, (image.unsqueeze(0),))
            return (features @ weight.T + bias).squeeze(0)

        logits, pullback = vjp(logits_of, filters)
        probabilities = logits.softmax(dim=0)
        total = None
        for index in range(image_targets.shape[0]):
            target = image_targets[index]
            share = (target * probabilities).sum() if exact else 1.0 / image_targets.shape[0]
            (gradients,) = pullback(target - probabilities)
            term = {name: share * _per_filter(gradient) for name, gradient in gradients.items()}
            total = term if total is None else {name: total[name] + term[name] for name in term}
        return total

    per_image = vmap(one_image, in_dims=(None, 0, 0))(filters, images, targets)
    return {name: values.sum(dim=0) for name, values in per_image.items()}


def _fisher_loop(model, names, weight, bias, images, targets, exact) -> dict[str, torch.Tensor]:
    """The same as :func:`_fisher_vmap`, one image at a time through torch.autograd."""
    parameters = dict(model.named_parameters())
    filters = [parameters[name] for name in names]
    total = {name: torch.zeros(parameters[name].shape[0], dtype=weight.dtype, device=weight.device) for name in names}
    flags = [parameter.requires_grad for parameter in filters]
    try:
        for parameter in filters:
            parameter.requires_grad_(True)
        for image, image_targets in zip(images, targets):
            with torch.enable_grad():
                logits = (model(image.unsqueeze(0)) @ weight.T + bias).squeeze(0)
            probabilities = logits.detach().softmax(dim=0)
            for index, target in enumerate(image_targets):
                share = (target * probabilities).sum() if exact else 1.0 / len(image_targets)
                last = index == len(image_targets) - 1
                gradients = torch.autograd.grad(
                    logits, filters, grad_outputs=target - probabilities, retain_graph=not last
                )
                for name, gradient in zip(names, gradients):
                    total[name] += share * _per_filter(gradient)
    finally:
        for parameter, flag in zip(filters, flags):
            parameter.requires_grad_(flag)
    return total


def _fisher(model, names, head, images, *, samples, batch_size, seed, vectorise=True) -> torch.Tensor:
    """The per-filter Fisher embedding of an eval-mode model copy (already in the images' dtype)."""
    device = _device_of(model)
    weight = head.weight.detach().to(device=device, dtype=images.dtype)
    bias = (head.bias.detach() if head.bias is not None else torch.zeros(len(weight), dtype=weight.dtype)).to(
        device=device, dtype=images.dtype
    )
    classes = len(weight)
    generator = torch.Generator().manual_seed(seed)
    total = None
    for batch in images.split(batch_size):
        batch = batch.to(device)
        if samples is None:
            targets = torch.eye(classes, dtype=batch.dtype, device=device).expand(len(batch), classes, classes)
        else:
            with torch.no_grad():
                probabilities = (model(batch) @ weight.T + bias).softmax(dim=1)
            drawn = torch.multinomial(probabilities.cpu().double(), samples, replacement=True, generator=generator)
            targets = F.one_hot(drawn, classes).to(device=device, dtype=batch.dtype)
        fisher = None
        if vectorise:
            try:
                fisher = _fisher_vmap(model, names, weight, bias, batch, targets, samples is None)
            except (RuntimeError, NotImplementedError) as error:
                warnings.warn(
                    f"{_SCORE}: torch.func could not vectorise the probe ({type(error).__name__}: "
                    f"{str(error).splitlines()[0] if str(error) else ''}); computing per-example gradients "
                    "one image at a time.",
                    stacklevel=3,
                )
                vectorise = False
        if fisher is None:
            fisher = _fisher_loop(model, names, weight, bias, batch, targets, samples is None)
        total = fisher if total is None else {name: total[name] + fisher[name] for name in names}
    embedding = torch.cat([total[name] for name in names]) / len(images)
    return embedding.detach().to(device="cpu", dtype=torch.float64)


def fisher_embedding(
    probe: nn.Module,
    head: nn.Linear,
    images: torch.Tensor,
    *,
    samples: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The per-filter diagonal Fisher of the probe under ``softmax(head(probe(images)))`` (float64, CPU).

    No labels: the expectation is over the model's own predictions. ``samples=None`` is the
    exact sum over the head's classes, an integer the Monte Carlo estimate from that many
    draws per image (seeded by ``seed``). Neither the probe nor the head is changed.
    """
    model, names = _checked_probe(probe, dtype)
    images = _checked_images(images, dtype)
    _checked_samples(samples)
    _checked_batch_size(batch_size)
    _checked_seed(seed)
    if not isinstance(head, nn.Linear) or head.out_features < 2:
        raise ConfigurationError(
            f"{_SCORE}: head must be a torch.nn.Linear with at least 2 outputs (classes), got {head!r}."
        )
    features = _features(model, images, batch_size)
    if features.shape[1] != head.in_features:
        raise ConfigurationError(
            f"{_SCORE}: head must take the probe's {features.shape[1]} features, got in_features={head.in_features}."
        )
    return _fisher(model, names, head, images, samples=samples, batch_size=batch_size, seed=seed)


def task_embedding(
    probe: nn.Module,
    images: torch.Tensor,
    labels,
    *,
    head_steps: int = 100,
    head_weight_decay: float = 1e-3,
    samples: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Task2Vec embedding of the task (images (N x ...), labels (N,)) on a fixed probe: float64, one entry per filter.

    Fits a linear head on the frozen probe's features (:func:`fit_head`), then returns the
    per-filter diagonal Fisher of the probe under the fitted model (:func:`fisher_embedding`).
    ``samples``: ``None`` for the exact expectation over the classes, an integer for that
    many Monte Carlo labels per image. The probe handed in is never changed.
    """
    model, names = _checked_probe(probe, dtype)
    images = _checked_images(images, dtype)
    class_indices(labels, len(images), _SCORE)
    _checked_samples(samples)
    _checked_batch_size(batch_size)
    _checked_seed(seed)
    features = _features(model, images, batch_size)
    head = fit_head(features, labels, head_steps=head_steps, head_weight_decay=head_weight_decay)
    return _fisher(model, names, head, images, samples=samples, batch_size=batch_size, seed=seed)


def _checked_embedding(values, name: str) -> np.ndarray:
    values = as_numpy(values)
    if values.dtype == bool or not np.issubdtype(values.dtype, np.number):
        raise ConfigurationError(f"{_SCORE}: {name} must be a numeric 1-D embedding, got dtype {values.dtype}.")
    values = values.astype(np.float64, copy=False)
    if values.ndim != 1 or values.size < 1:
        raise ConfigurationError(f"{_SCORE}: {name} must be a 1-D embedding, got shape {values.shape}.")
    if not np.isfinite(values).all():
        raise ConfigurationError(f"{_SCORE}: {name} must be finite, got NaN or infinite entries.")
    if (values < 0).any():
        raise ConfigurationError(
            f"{_SCORE}: {name} must be >= 0 (a Fisher diagonal), got {int((values < 0).sum())} negative entries."
        )
    if not (values > 0).any():
        raise ConfigurationError(f"{_SCORE}: {name} must have a positive entry, got all zeros.")
    return values


def task_distance(a, b) -> float:
    """Symmetric normalised cosine distance of two task embeddings, 1 - cos(a / (a + b), b / (a + b)), in [0, 1].

    Entries where a + b = 0 are left out.
    """
    a, b = _checked_embedding(a, "a"), _checked_embedding(b, "b")
    if a.shape != b.shape:
        raise ConfigurationError(
            f"{_SCORE}: embeddings must have the same shape (the same probe), got {a.shape} and {b.shape}."
        )
    total = a + b
    kept = total > 0
    a, b = a[kept] / total[kept], b[kept] / total[kept]
    # sqrt(x * x) is x exactly, so identical embeddings give a cosine of exactly 1.
    cosine = np.dot(a, b) / math.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(min(max(1.0 - cosine, 0.0), 1.0))


def task_distances(embeddings: Mapping[str, torch.Tensor]) -> tuple[list[str], np.ndarray]:
    """The names (in the mapping's order) and the symmetric T x T matrix of :func:`task_distance`, zero diagonal."""
    if not isinstance(embeddings, Mapping) or len(embeddings) < 1:
        raise ConfigurationError(
            f"{_SCORE}: embeddings must be a non-empty mapping of name to embedding, got {type(embeddings).__name__} "
            f"of {len(embeddings) if isinstance(embeddings, Mapping) else 'no'} entries."
        )
    names = list(embeddings)
    for name in names:
        _checked_embedding(embeddings[name], f"embedding {name!r}")
    matrix = np.zeros((len(names), len(names)))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            matrix[i, j] = matrix[j, i] = task_distance(embeddings[names[i]], embeddings[names[j]])
    return names, matrix
