"""Semi-coupled dictionary learning (SDL): two dictionaries and a linear map between their sparse codes.

Wang, Zhang, Liang & Pan, "Semi-coupled dictionary learning with applications to image
super-resolution and photo-sketch synthesis", CVPR 2012 (textbook §6.1). Given ``n`` paired
samples of a source and a target domain, SDL learns a source dictionary ``D^S``, a target
dictionary ``D^T`` and a mapping ``W`` from target codes to source codes by minimising

    ||X^S - D^S U^S||_F^2 + ||X^T - D^T U^T||_F^2 + gamma ||U^S - W U^T||_F^2
        + lambda_S ||U^S||_1 + lambda_T ||U^T||_1 + lambda_W ||W||_F^2
    subject to ||d^S_k||_2 <= 1 and ||d^T_k||_2 <= 1 for every atom k,

with the paper's columns-are-samples notation (``X^S`` is d_S x n, ``U^S`` is K x n). The
reconstruction terms carry no 1/2, unlike scikit-learn's sparse coding objective
``0.5 ||x - u D||^2 + alpha ||u||_1``, so an SDL penalty ``lambda`` is scikit-learn's
``alpha = lambda / 2`` (:func:`lasso_codes`). ``W = I`` with ``U^S = U^T`` is the fully coupled
formulation, one code shared by both domains (Yang, Wright, Huang & Ma, IEEE TIP 2010;
:func:`fit_fully_coupled`).

Arrays follow scikit-learn: rows are samples (``source`` is n x d_S), atoms are rows
(``source_atoms`` is K x d_S) and codes are n x K, so the paper's ``D^S U^S`` is
``codes @ atoms`` here and ``W U^T`` is ``target_codes @ mapping.T``. ``mapping`` is the
paper's K x K ``W`` itself: a target code ``u_T`` (a column) maps to ``W u_T``.

Learning (:func:`fit_semi_coupled`) alternates, as in the paper: the two sparse codings
(each a lasso on a stacked system), the two dictionary updates (block-coordinate descent
over atoms, :func:`update_dictionary`) and the ridge update of ``W`` (:func:`ridge_mapping`).
Each step minimises the objective over its block with the others fixed, so the objective
never increases from one alternation to the next (up to the lasso solver's tolerance). The
start, two dictionaries learned independently and ``W`` fitted by ridge regression between
their codes, is the uncoupled pair (:func:`fit_uncoupled`), the baseline SDL improves on.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import sparse_encode
from sklearn.exceptions import ConvergenceWarning

from selfsup.classical.dictionary import learn_atoms
from selfsup.errors import ConfigurationError, is_finite, is_integer, require

LASSO_ITERATIONS = 1000
"""Coordinate-descent passes allowed per lasso (scikit-learn's ``Lasso``, relative duality-gap tolerance 1e-8)."""


@dataclass(frozen=True, eq=False)
class CoupledDictionaries:
    """A source and a target dictionary, the map ``W`` between their codes, and the SDL hyper-parameters.

    Attributes:
        source_atoms: ``D^S`` as K x d_S, one atom per row, each of norm <= 1.
        target_atoms: ``D^T`` as K x d_T, one atom per row, each of norm <= 1.
        mapping: ``W``, K x K: a target code ``u_T`` maps to the source code ``W u_T``.
        gamma: weight of the coupling term ``||U^S - W U^T||_F^2``.
        lambda_source: the source codes' l1 penalty ``lambda_S``.
        lambda_target: the target codes' l1 penalty ``lambda_T``.
        lambda_mapping: the ridge penalty ``lambda_W`` on ``W``.
        objective_history: the SDL objective on the training pairs at the start and after
            each alternation (one value for the uncoupled pair: its own).
        source_codes: the training pairs' source codes ``U^S`` (n x K) at the end of the fit, if fitted.
        target_codes: the training pairs' target codes ``U^T`` (n x K) at the end of the fit, if fitted.

    The arrays are read-only copies.
    """

    source_atoms: np.ndarray
    target_atoms: np.ndarray
    mapping: np.ndarray
    gamma: float
    lambda_source: float
    lambda_target: float
    lambda_mapping: float
    objective_history: tuple[float, ...] = ()
    source_codes: np.ndarray | None = None
    target_codes: np.ndarray | None = None

    def __post_init__(self):
        _check_penalties(self.gamma, self.lambda_source, self.lambda_target, self.lambda_mapping)
        source_atoms = _matrix(self.source_atoms, "source_atoms")
        atoms = source_atoms.shape[0]
        target_atoms = _matrix(self.target_atoms, "target_atoms", rows=atoms)
        mapping = _matrix(self.mapping, "mapping", rows=atoms, columns=atoms)
        for name, matrix in (("source_atoms", source_atoms), ("target_atoms", target_atoms)):
            longest = float(np.linalg.norm(matrix, axis=1).max())
            if not longest <= 1 + 1e-9:
                raise ConfigurationError(
                    f"{name} must be atoms (rows) of norm <= 1, got an atom of norm {longest:.6g}."
                )
        _freeze(self, "source_atoms", source_atoms)
        _freeze(self, "target_atoms", target_atoms)
        _freeze(self, "mapping", mapping)
        for name in ("source_codes", "target_codes"):
            if getattr(self, name) is not None:
                _freeze(self, name, _matrix(getattr(self, name), name, columns=atoms))
        object.__setattr__(self, "objective_history", tuple(float(value) for value in self.objective_history))

    @property
    def n_atoms(self) -> int:
        return self.source_atoms.shape[0]

    def encode_source(self, source) -> np.ndarray:
        """Source codes (n x K): each row minimises ``||x - D^S u||^2 + lambda_S ||u||_1`` (a lasso)."""
        source = _matrix(source, "source", columns=self.source_atoms.shape[1])
        return lasso_codes(source, self.source_atoms, self.lambda_source)

    def encode_target(self, target) -> np.ndarray:
        """Target codes (n x K): each row minimises ``||x - D^T u||^2 + lambda_T ||u||_1`` (a lasso)."""
        target = _matrix(target, "target", columns=self.target_atoms.shape[1])
        return lasso_codes(target, self.target_atoms, self.lambda_target)

    def target_to_source_codes(self, target) -> np.ndarray:
        """The source codes ``W u_T`` predicted for target samples (n x K): their target codes mapped by ``W``."""
        return self.encode_target(target) @ self.mapping.T

    def synthesise_source(self, target) -> np.ndarray:
        """The source samples predicted for target samples (n x d_S): ``D^S W u_T``."""
        return self.target_to_source_codes(target) @ self.source_atoms

    def objective(self, source, target, source_codes, target_codes) -> float:
        """The SDL objective (module docstring) of these dictionaries and ``W`` with the given pairs and codes."""
        source = _matrix(source, "source", columns=self.source_atoms.shape[1])
        target = _matrix(target, "target", rows=source.shape[0], columns=self.target_atoms.shape[1])
        source_codes = _matrix(source_codes, "source_codes", rows=source.shape[0], columns=self.n_atoms)
        target_codes = _matrix(target_codes, "target_codes", rows=source.shape[0], columns=self.n_atoms)
        return _objective(
            source,
            target,
            self.source_atoms,
            self.target_atoms,
            self.mapping,
            source_codes,
            target_codes,
            self.gamma,
            self.lambda_source,
            self.lambda_target,
            self.lambda_mapping,
        )


def fit_uncoupled(
    source,
    target,
    n_atoms: int,
    gamma: float,
    lambda_source: float,
    lambda_target: float,
    lambda_mapping: float,
    seed: int = 0,
    initial_iterations: int = 30,
) -> CoupledDictionaries:
    """The uncoupled pair: each domain's dictionary learned alone, then ``W`` by ridge regression between the codes.

    This is SDL's initialisation in Wang et al. (2012). Each dictionary is scikit-learn's
    :class:`~sklearn.decomposition.DictionaryLearning` (coordinate descent, ``alpha =
    lambda / 2``, ``initial_iterations`` alternations) on its domain alone, started from
    ``n_atoms`` training samples drawn by ``seed`` (the same draw in both domains) scaled to
    unit norm; the codes are then the lasso codes (:func:`lasso_codes`) of the training pairs
    and ``W`` is :func:`ridge_mapping` of the source codes on the target codes.

    Args:
        source: the source samples, n x d_S; row i is paired with ``target``'s row i.
        target: the target samples, n x d_T.
        n_atoms: atoms K in each dictionary, at most n.
        gamma: the coupling weight (> 0); here only in ``W``'s ridge penalty ``lambda_mapping / gamma``.
        lambda_source: the source codes' l1 penalty (> 0).
        lambda_target: the target codes' l1 penalty (> 0).
        lambda_mapping: the ridge penalty on ``W`` (>= 0).
        seed: draws the starting atoms and seeds scikit-learn (``random_state``).
        initial_iterations: scikit-learn's ``max_iter`` for each dictionary (>= 1).
    """
    source, target = _pairs(source, target)
    _check_penalties(gamma, lambda_source, lambda_target, lambda_mapping)
    _check_fit_sizes(source, n_atoms, seed, initial_iterations=initial_iterations)
    starts = np.random.default_rng(seed).choice(source.shape[0], size=n_atoms, replace=False)
    source_atoms, source_codes = _learn_dictionary(source, starts, lambda_source, seed, initial_iterations)
    target_atoms, target_codes = _learn_dictionary(target, starts, lambda_target, seed, initial_iterations)
    mapping = ridge_mapping(source_codes, target_codes, gamma, lambda_mapping)
    value = _objective(
        source,
        target,
        source_atoms,
        target_atoms,
        mapping,
        source_codes,
        target_codes,
        gamma,
        lambda_source,
        lambda_target,
        lambda_mapping,
    )
    return CoupledDictionaries(
        source_atoms,
        target_atoms,
        mapping,
        gamma,
        lambda_source,
        lambda_target,
        lambda_mapping,
        objective_history=(value,),
        source_codes=source_codes,
        target_codes=target_codes,
    )


def fit_semi_coupled(
    source,
    target,
    n_atoms: int,
    gamma: float,
    lambda_source: float,
    lambda_target: float,
    lambda_mapping: float,
    iterations: int,
    seed: int = 0,
    tolerance: float = 1e-6,
    initial_iterations: int = 30,
    initial: CoupledDictionaries | None = None,
) -> CoupledDictionaries:
    """SDL (Wang et al. 2012): the module docstring's objective, minimised by alternation as in the paper.

    Starting from the uncoupled pair (``initial``, else :func:`fit_uncoupled` with the same
    arguments), each of at most ``iterations`` alternations runs, the other blocks fixed:

    1. ``U^S``: the lasso ``[X^S; sqrt(gamma) W U^T] ~ [D^S; sqrt(gamma) I] U^S`` with penalty ``lambda_S``;
    2. ``U^T``: the lasso ``[X^T; sqrt(gamma) U^S] ~ [D^T; sqrt(gamma) W] U^T`` with penalty ``lambda_T``;
    3. ``D^S`` and ``D^T``: :func:`update_dictionary` (block-coordinate descent, unit-ball projection);
    4. ``W = U^S U^T' (U^T U^T' + (lambda_W / gamma) I)^-1`` (:func:`ridge_mapping`).

    The lassos start from the previous codes (coordinate descent, which never increases its
    objective), so the objective recorded after each alternation in ``objective_history``
    does not increase. The loop stops early once an alternation lowers it by at most
    ``tolerance`` times its previous value.

    Args:
        source: the source samples, n x d_S; row i is paired with ``target``'s row i.
        target: the target samples, n x d_T.
        n_atoms: atoms K in each dictionary, at most n.
        gamma: the coupling weight (> 0).
        lambda_source: the source codes' l1 penalty (> 0).
        lambda_target: the target codes' l1 penalty (> 0).
        lambda_mapping: the ridge penalty on ``W`` (>= 0).
        iterations: the most alternations (>= 1).
        seed: seeds the uncoupled start (unused when ``initial`` is given).
        tolerance: the relative decrease of the objective below which the loop stops (>= 0; 0 runs them all).
        initial_iterations: scikit-learn's ``max_iter`` for the uncoupled start.
        initial: the start, :func:`fit_uncoupled` of these pairs with ``n_atoms`` atoms (its
            dictionaries, ``W`` and training codes); its hyper-parameters are replaced by these.
    """
    source, target = _pairs(source, target)
    _check_penalties(gamma, lambda_source, lambda_target, lambda_mapping)
    _check_fit_sizes(source, n_atoms, seed, iterations=iterations, initial_iterations=initial_iterations)
    require(is_finite(tolerance) and tolerance >= 0, "tolerance", tolerance, "a finite number >= 0")
    penalties = (gamma, lambda_source, lambda_target, lambda_mapping)
    if initial is None:
        initial = fit_uncoupled(source, target, n_atoms, *penalties, seed, initial_iterations)
    _check_initial(initial, source, target, n_atoms)
    source_atoms, target_atoms, mapping = (
        np.array(a) for a in (initial.source_atoms, initial.target_atoms, initial.mapping)
    )
    source_codes, target_codes = np.array(initial.source_codes), np.array(initial.target_codes)
    history = [_objective(source, target, source_atoms, target_atoms, mapping, source_codes, target_codes, *penalties)]
    root_gamma = math.sqrt(gamma)
    identity = np.eye(n_atoms)
    for _ in range(iterations):
        source_codes = lasso_codes(
            np.hstack([source, root_gamma * target_codes @ mapping.T]),
            np.hstack([source_atoms, root_gamma * identity]),
            lambda_source,
            initial=source_codes,
        )
        target_codes = lasso_codes(
            np.hstack([target, root_gamma * source_codes]),
            np.hstack([target_atoms, root_gamma * mapping.T]),
            lambda_target,
            initial=target_codes,
        )
        source_atoms = update_dictionary(source, source_codes, source_atoms)
        target_atoms = update_dictionary(target, target_codes, target_atoms)
        mapping = ridge_mapping(source_codes, target_codes, gamma, lambda_mapping)
        history.append(
            _objective(source, target, source_atoms, target_atoms, mapping, source_codes, target_codes, *penalties)
        )
        if history[-2] - history[-1] <= tolerance * abs(history[-2]):
            break
    return CoupledDictionaries(
        source_atoms,
        target_atoms,
        mapping,
        *penalties,
        objective_history=tuple(history),
        source_codes=source_codes,
        target_codes=target_codes,
    )


def fit_fully_coupled(
    source,
    target,
    n_atoms: int,
    lambda_code: float,
    seed: int = 0,
    initial_iterations: int = 30,
) -> CoupledDictionaries:
    """The fully coupled pair (``W = I``, one code per pair): one dictionary learned on the concatenated pairs.

    Yang, Wright, Huang & Ma, "Image super-resolution via sparse representation", IEEE TIP
    2010: :class:`~sklearn.decomposition.DictionaryLearning` on ``[X^S, X^T]`` (each row a
    pair) with the l1 penalty ``lambda_code`` (``alpha = lambda_code / 2``), started as in
    :func:`fit_uncoupled`; each joint atom, of norm <= 1, splits into a source and a target
    atom. Target samples are then coded on the target atoms alone and those codes used
    unchanged in the source domain. ``gamma`` is 1 and ``lambda_mapping`` 0 (``W`` is fixed).
    """
    source, target = _pairs(source, target)
    _check_penalties(
        1.0, lambda_code, lambda_code, 0.0, names=("gamma", "lambda_code", "lambda_code", "lambda_mapping")
    )
    _check_fit_sizes(source, n_atoms, seed, initial_iterations=initial_iterations)
    starts = np.random.default_rng(seed).choice(source.shape[0], size=n_atoms, replace=False)
    joint = np.hstack([source, target])
    atoms, codes = _learn_dictionary(joint, starts, lambda_code, seed, initial_iterations)
    width = source.shape[1]
    return CoupledDictionaries(
        atoms[:, :width],
        atoms[:, width:],
        np.eye(n_atoms),
        1.0,
        lambda_code,
        lambda_code,
        0.0,
        source_codes=codes,
        target_codes=codes,
    )


def lasso_codes(data: np.ndarray, atoms: np.ndarray, penalty: float, initial: np.ndarray | None = None) -> np.ndarray:
    """Rows ``u_i`` minimising ``||x_i - u_i atoms||^2 + penalty ||u_i||_1``: a lasso with ``alpha = penalty / 2``.

    :func:`sklearn.decomposition.sparse_encode` minimises ``0.5 ||x - u D||^2 + alpha ||u||_1``;
    halving SDL's objective gives that with ``alpha = penalty / 2``. Coordinate descent
    (``lasso_cd``), started from ``initial`` when given, so that the result is never worse
    than ``initial``. ``data`` is n x d and ``atoms`` K x d; the codes are n x K.
    """
    start = None if initial is None else np.array(initial, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return sparse_encode(
            data, atoms, algorithm="lasso_cd", alpha=penalty / 2, init=start, max_iter=LASSO_ITERATIONS
        )


def update_dictionary(data, codes, atoms, max_sweeps: int = 200, tolerance: float = 1e-10) -> np.ndarray:
    """The atoms minimising ``||X - U D||_F^2`` subject to ``||d_k|| <= 1``, the codes ``U`` fixed.

    Block-coordinate descent over atoms (Mairal, Bach, Ponce & Sapiro, "Online dictionary
    learning for sparse coding", ICML 2009, Algorithm 2) with ``A = U'U`` and ``B = U'X``:
    atom k becomes ``(d_k + (b_k - a_k D) / A_kk)`` projected onto the unit ball, the exact
    minimiser over that atom with the others fixed. Sweeps over all atoms repeat until no
    coordinate moves by more than ``tolerance`` or ``max_sweeps`` sweeps; an atom no code
    uses (``A_kk = 0``) is left unchanged. Written here because scikit-learn's own
    (``_update_dict``) is private. ``data`` is n x d, ``codes`` n x K, ``atoms`` K x d (not
    modified); returns the new K x d atoms.
    """
    atoms = _matrix(atoms, "atoms")
    data = _matrix(data, "data", columns=atoms.shape[1])
    codes = _matrix(codes, "codes", rows=data.shape[0], columns=atoms.shape[0])
    require(is_integer(max_sweeps) and max_sweeps >= 1, "max_sweeps", max_sweeps, "an integer >= 1")
    require(is_finite(tolerance) and tolerance >= 0, "tolerance", tolerance, "a finite number >= 0")
    gram = codes.T @ codes
    correlation = codes.T @ data
    for _ in range(max_sweeps):
        largest_move = 0.0
        for k in np.flatnonzero(np.diag(gram) > 0):
            atom = atoms[k] + (correlation[k] - gram[k] @ atoms) / gram[k, k]
            atom /= max(1.0, float(np.linalg.norm(atom)))
            largest_move = max(largest_move, float(np.abs(atom - atoms[k]).max()))
            atoms[k] = atom
        if largest_move <= tolerance:
            break
    return atoms


def ridge_mapping(source_codes, target_codes, gamma: float, lambda_mapping: float) -> np.ndarray:
    """``W`` minimising ``gamma ||U^S - W U^T||_F^2 + lambda_W ||W||_F^2`` (ridge regression), in closed form.

    ``W = U^S U^T' (U^T U^T' + (lambda_W / gamma) I)^-1``. Codes are n x K (rows are samples);
    with ``lambda_mapping = 0``, the least-squares ``W`` of least norm (a target atom no code
    uses gets a zero column).
    """
    source_codes = _matrix(source_codes, "source_codes")
    target_codes = _matrix(target_codes, "target_codes", rows=source_codes.shape[0])
    _check_penalties(gamma, 1.0, 1.0, lambda_mapping)
    if lambda_mapping == 0:
        transposed, *_ = np.linalg.lstsq(target_codes, source_codes, rcond=None)
        return transposed.T
    gram = target_codes.T @ target_codes + (lambda_mapping / gamma) * np.eye(target_codes.shape[1])
    return np.linalg.solve(gram, target_codes.T @ source_codes).T


def _objective(
    source, target, source_atoms, target_atoms, mapping, source_codes, target_codes, gamma, lambda_s, lambda_t, lambda_w
) -> float:
    source_residual = source - source_codes @ source_atoms
    target_residual = target - target_codes @ target_atoms
    coupling = source_codes - target_codes @ mapping.T
    return float(
        np.sum(source_residual**2)
        + np.sum(target_residual**2)
        + gamma * np.sum(coupling**2)
        + lambda_s * np.abs(source_codes).sum()
        + lambda_t * np.abs(target_codes).sum()
        + lambda_w * np.sum(mapping**2)
    )


def _learn_dictionary(data, starts, penalty, seed, iterations) -> tuple[np.ndarray, np.ndarray]:
    """The batch dictionary learner of self-taught learning on ``data`` from the samples ``starts``; atoms and codes."""
    first_atoms = data[starts] / np.maximum(np.linalg.norm(data[starts], axis=1, keepdims=True), 1e-12)
    atoms = learn_atoms(data, len(starts), penalty / 2, iterations, seed, start=first_atoms)
    atoms = atoms / np.maximum(np.linalg.norm(atoms, axis=1, keepdims=True), 1.0)
    return atoms, lasso_codes(data, atoms, penalty)


def _matrix(value, name: str, rows: int | None = None, columns: int | None = None, min_rows: int = 1) -> np.ndarray:
    """``value`` as a new float64 array, else a :class:`ConfigurationError` naming ``name`` and what it must be."""
    shape = "a 2-d array of finite real numbers"
    if rows is not None or columns is not None:
        shape += f" of shape ({rows if rows is not None else 'n'}, {columns if columns is not None else 'd'})"
    elif min_rows > 1:
        shape += f" with at least {min_rows} rows"

    def refuse(got: str):
        raise ConfigurationError(f"{name} must be {shape}, got {got}.")

    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        refuse(f"a {type(value).__name__} that is not an array (ragged rows?)")
    if array.dtype.kind not in "iuf":
        refuse(f"an array of dtype {array.dtype}")
    if array.ndim != 2:
        refuse(f"an array of shape {array.shape}")
    if array.shape[0] < max(min_rows, 1) or array.shape[1] < 1:
        refuse(f"an array of shape {array.shape}")
    if (rows is not None and array.shape[0] != rows) or (columns is not None and array.shape[1] != columns):
        refuse(f"an array of shape {array.shape}")
    if not np.isfinite(array).all():
        refuse(f"{int((~np.isfinite(array)).sum())} NaN or infinite values")
    return array.astype(np.float64)


def _pairs(source, target) -> tuple[np.ndarray, np.ndarray]:
    """The paired training samples: two finite 2-d arrays of at least 2 rows, as many rows in each."""
    source = _matrix(source, "source", min_rows=2)
    target = _matrix(target, "target", min_rows=2)
    if target.shape[0] != source.shape[0]:
        raise ConfigurationError(
            f"target must have as many rows (paired samples) as source ({source.shape[0]}), got {target.shape[0]} rows."
        )
    return source, target


def _check_penalties(
    gamma,
    lambda_source,
    lambda_target,
    lambda_mapping,
    names=("gamma", "lambda_source", "lambda_target", "lambda_mapping"),
) -> None:
    for name, value in zip(names[:3], (gamma, lambda_source, lambda_target)):
        require(is_finite(value) and value > 0, name, value, "a finite number > 0")
    require(is_finite(lambda_mapping) and lambda_mapping >= 0, names[3], lambda_mapping, "a finite number >= 0")


def _check_fit_sizes(source, n_atoms, seed, iterations: int = 1, initial_iterations: int = 1) -> None:
    pairs = source.shape[0]
    require(
        is_integer(n_atoms) and 1 <= n_atoms <= pairs,
        "n_atoms",
        n_atoms,
        f"an integer between 1 and the number of pairs ({pairs})",
    )
    require(is_integer(iterations) and iterations >= 1, "iterations", iterations, "an integer >= 1")
    require(
        is_integer(initial_iterations) and initial_iterations >= 1,
        "initial_iterations",
        initial_iterations,
        "an integer >= 1",
    )
    require(is_integer(seed) and 0 <= seed < 2**32, "seed", seed, "an integer between 0 and 2**32 - 1")


def _check_initial(initial, source, target, n_atoms) -> None:
    expected = f"the fit_uncoupled result of these {source.shape[0]} pairs with {n_atoms} atoms"
    if not isinstance(initial, CoupledDictionaries):
        raise ConfigurationError(f"initial must be {expected}, got a {type(initial).__name__}.")
    shapes = (
        initial.source_atoms.shape,
        initial.target_atoms.shape,
        None if initial.source_codes is None else initial.source_codes.shape,
        None if initial.target_codes is None else initial.target_codes.shape,
    )
    wanted = (
        (n_atoms, source.shape[1]),
        (n_atoms, target.shape[1]),
        (source.shape[0], n_atoms),
        (source.shape[0], n_atoms),
    )
    if shapes != wanted:
        raise ConfigurationError(
            f"initial must be {expected}, got atoms of shapes {shapes[0]} and {shapes[1]} and codes of shapes "
            f"{shapes[2]} and {shapes[3]}."
        )


def _freeze(instance, name: str, array: np.ndarray) -> None:
    array.setflags(write=False)
    object.__setattr__(instance, name, array)
