"""The synthesis transformer (Gu, Liang et al., ACS Nano 2025): recipe → size, shape, success.

(~620 lines: one scikit-learn estimator, its documented parameters and their checks; the network,
the training loop, retrieval tokens and persistence already live in network.py, trainer.py,
retrieval.py and persistence.py.)

Architecture (paper, Methods "Transformer model"): every chemical is a token
``[product flag, scaled amount, descriptor]`` (:class:`~nc_synthmodel.encoding.RecipeEncoder`),
projected to ``d_model``; a learnable CLS token is prepended; a pre-LayerNorm transformer
encoder (default 8 layers, width 256, 4 heads) reads the sequence with padding masked;
the CLS output joined with the four scaled conditions (injection and reaction temperature,
time, heating rate) feeds three MLP heads:

* size - Huber loss on the standardised ``ln(size_nm)``; rows with fewer than 300 counted
  particles cost nothing when the prediction is within ±``tolerance`` (15 %) of the label
  (:func:`~nc_synthmodel.evaluation.tolerant_size_mask`);
* shape - cross-entropy over the 11 classes of :data:`~nc_synthmodel.contract.SHAPE_CLASSES`;
* success - binary cross-entropy, positives are the recipes with an outcome, negatives the
  failed recipes passed to :meth:`SynthesisTransformer.fit` (``failed_recipes.csv``).

Training has two stages, as in the paper: *pretraining* on the original recipes plus
reaction-intermediate copies (:class:`~nc_synthmodel.augment.IntermediateAugmenter`; a fresh
subset of ``augment_per_epoch`` copies per recipe each epoch), then *fine-tuning* on the
originals (optionally only sizes up to ``finetune_max_size_nm``, as the authors' fine-tuning
stage reads its CSV with ``max_threshold=20``).  Early stopping (the checkpoint kept) uses a
validation split carved from the *training* recipes - ``validation_fraction`` of the solid
(N ≥ 300) training rows with a size, held out of both stages with their copies.  The
held-out fold of a cross-validation is never looked at.

Options beyond the paper's description, from the authors' code or our CPU budget:
``condition_tokens`` (conditions appended to every token, as the authors' code does),
``target_scale="linear"`` (robust-scaled nm, the authors' target scaling), ``ema_decay`` (the
authors evaluate an exponential moving average of the weights).  Batches group recipes of
similar length and drop all-padding token columns (the encoder has no positional encoding,
so real tokens are packed first): about half the work of the 14-slot layout, identical
outputs.

Descriptor vectors are gathered per batch from a per-fit vocabulary matrix rather than
stored per token, so 30,000 augmented recipes cost ~10 MB instead of ~800 MB; the
network sees exactly the token of the paper.  Descriptors are standardised per dimension
(statistics of the training vocabulary, stored in the state dict).

Models save as a directory - ``weights.safetensors``, ``model.json`` (parameters, encoder
and target scaling, training history) and ``descriptors.npz`` (the descriptor table it was
trained with, names + vectors) - no pickle.  :meth:`SynthesisTransformer.load` needs
nothing else; a table passed explicitly (e.g. one with a fallback for new chemicals) must
hold the same vectors, or loading fails.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ..contract import SHAPE_CLASSES, Recipe
from ..descriptors import DescriptorTable
from ..features.augment import IntermediateAugmenter
from ..features.encoding import RecipeEncoder
from ..targets import PAPER_TOLERANCE, SOLID_MIN_PARTICLES, size_fit_targets
from .network import build_network
from .persistence import load_transformer, save_transformer
from .retrieval import TOKEN_WIDTH, attach_neighbours, check_retrieval_params, recipe_tokens
from .threads import torch_threads
from .trainer import _Batches, _Compact, _sample_copies, run_stage, size_loss  # noqa: F401 - _Batches re-exported

__all__ = ["SynthesisTransformer"]

logger = logging.getLogger(__name__)

#: Floor of a linear-scale size prediction (a regression output can go negative).
_MIN_SIZE_NM = 0.1

#: Progress callback: ``progress(stage, epoch, n_epochs, metrics)``.
ProgressCallback = Callable[[str, int, int, dict], None]


def _check_positive_int(owner, names: Sequence[str], allow_zero: Sequence[str] = ()) -> None:
    for name in names:
        value = getattr(owner, name)
        low = 0 if name in allow_zero else 1
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


class SynthesisTransformer(RegressorMixin, BaseEstimator):
    """Transformer over recipe tokens predicting size (nm), shape class and success.

    A scikit-learn regressor for size (``fit(recipes, y)`` / ``predict(recipes) -> nm``), so
    :func:`~nc_synthmodel.evaluation.cross_validate` runs it like any baseline, plus
    :meth:`predict_outcomes` for all three heads.

    Parameters
    ----------
    descriptors : DescriptorTable
        Descriptor of every chemical, product and (with augmentation) intermediate.
    d_model, n_layers, n_heads, dim_feedforward, dropout
        Encoder width, depth, attention heads, feed-forward width, dropout.
    augment : bool
        Pretrain on reaction-intermediate copies (needs ``A@B`` names in ``descriptors``).
    augment_copies, augment_per_epoch : int
        Copies generated per recipe; copies drawn per recipe and epoch of an augmented stage.
    augment_stages : {"pretrain", "finetune", "both"}
        The stages whose epochs add the copies (the paper: pretraining only).
    pretrain_epochs, finetune_epochs : int
        Epochs of each stage (0 skips the stage).
    finetune_max_size_nm : float or None
        Fine-tune the size head only on recipes up to this size.
    batch_size, learning_rate, weight_decay
        AdamW with linear warm-up (first 5 % of steps) and cosine decay, per stage
        (fine-tuning starts at ``finetune_lr_factor`` × the rate).  ``learning_rate`` is the
        rate of a batch of 128, scaled to ``batch_size`` by ``lr_scaling``.
    finetune_lr_factor : float
    condition_tokens : bool
        Append the scaled conditions to every chemical token (the authors' code), not only
        to the CLS output.
    target_scale : {"log", "linear"}
        Size target: standardised ``ln(size_nm)``, or ``size_nm`` centred on the median and
        divided by the interquartile range (the authors' robust scaling; the loss then
        weighs nanometres, the unit of the MAE).
    ema_decay : float or None
        Keep an exponential moving average of the weights (e.g. 0.99 per step, as the
        authors); it is what validation scores and what the model keeps.
    tolerance : float or None
        Zero-loss band for recipes with fewer than 300 particles (None: plain Huber).
    shape_weight, success_weight : float
        Weights of the shape and success losses beside the size loss.
    schedule : {"cosine", "onecycle"}
        Warm-up + cosine decay, or torch's one-cycle schedule (25 % rising), per stage.
    lr_scaling : {"none", "sqrt", "linear"}
        How the learning rate grows with ``batch_size`` / 128 (``sqrt`` for a larger batch:
        batch 512 then trains at 2 × ``learning_rate``).
    precision : {"auto", "bf16", "fp32"}
        bfloat16 autocast while training (``auto``: where the device computes bf16 natively,
        :func:`~nc_synthmodel.models.trainer.native_bf16`); prediction is always float32.
    fused_optimizer : bool
        torch's fused AdamW (one kernel for all parameters).
    retrieval_k, retrieval_metric, retrieval_aggregate, retrieval_dropout, retrieval_residual, retrieval_crossfit
    retrieval_forest, retrieval_max_features
        Retrieval tokens (:mod:`~nc_synthmodel.models.retrieval`): ``k`` nearest training recipes
        with a known size and their outcomes join every recipe's tokens (0: none); a training
        recipe never retrieves itself (nor its group when ``fit`` gets ``groups``).  ``metric``
        ``"euclidean"`` (standardised flat features) or ``"forest"`` (proximity of a forest fitted
        on the bank; a bank recipe counts its out-of-bag trees).  ``aggregate`` (forest): one more
        token, the bank's outcomes averaged with the forest's leaf weights.  ``dropout``: each
        token hidden with this probability per training batch.  ``residual``: the size is a
        correction to the tokens' gated mean (True) or to the aggregate token (``"aggregate"``,
        the correction starting at zero).  ``crossfit`` K >= 2 (forest): a training recipe's
        tokens come from a forest and bank of the other K - 1 parts of the bank (0: out of bag).
        ``forest`` ``"random"`` or ``"extra"`` (extremely randomised trees; needs ``crossfit``) with
        ``max_features`` of the features per split: the proximity forest.
    validation_fraction : float
        Share of the solid training recipes held out for early stopping (0 disables it:
        the last epoch is kept).
    unknown_product : {"zeros", "raise"}
        Products without a descriptor (the authors' code uses the zero vector).
    encoder_params : dict, optional
        Extra :class:`~nc_synthmodel.encoding.RecipeEncoder` parameters.
    random_state : int
    n_threads : int or None
        Torch intra-op threads while fitting/predicting (None: leave torch's setting).
    device : {"auto", "cpu", "cuda"}

    Attributes
    ----------
    encoder_ : RecipeEncoder
    net_ : torch.nn.Module (CPU, eval mode)
    target_mean_, target_std_ : float
        Centre and scale of the size target (see ``target_scale``).
    history_ : dict
        Per stage, per epoch: losses and (with a validation split) ``val_MAE``.
    eval_history_ : list of dict
        With ``fit(eval_set=...)``: ``stage``, ``epoch``, ``MAE`` and the predicted
        ``size_nm`` of the eval recipes at each scored epoch (the weights then kept).
    best_epoch_ : dict
        Per stage, the epoch whose weights were kept.
    has_success_ : bool
        Whether failed recipes trained the success head.
    n_copies_ : int
        Augmented copies available to pretraining.
    """

    def __init__(
        self,
        descriptors: DescriptorTable,
        d_model: int = 256,
        n_layers: int = 8,
        n_heads: int = 4,
        dim_feedforward: int = 512,
        dropout: float = 0.1,
        augment: bool = True,
        augment_copies: int = 10,
        augment_per_epoch: int = 1,
        augment_stages: str = "pretrain",
        pretrain_epochs: int = 30,
        finetune_epochs: int = 40,
        finetune_max_size_nm: float | None = None,
        batch_size: int = 128,
        learning_rate: float = 5e-4,
        finetune_lr_factor: float = 0.3,
        weight_decay: float = 0.01,
        condition_tokens: bool = False,
        target_scale: str = "log",
        ema_decay: float | None = None,
        tolerance: float | None = PAPER_TOLERANCE,
        shape_weight: float = 0.3,
        success_weight: float = 0.3,
        validation_fraction: float = 0.1,
        schedule: str = "cosine",
        lr_scaling: str = "none",
        precision: str = "auto",
        fused_optimizer: bool = True,
        retrieval_k: int = 0,
        retrieval_metric: str = "euclidean",
        retrieval_aggregate: bool = False,
        retrieval_dropout: float = 0.0,
        retrieval_residual: bool | str = False,
        retrieval_crossfit: int = 0,
        retrieval_forest: str = "random",
        retrieval_max_features: float = 1 / 3,
        unknown_product: str = "zeros",
        encoder_params: dict | None = None,
        random_state: int = 0,
        n_threads: int | None = None,
        device: str = "auto",
    ):
        self.descriptors = descriptors
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dim_feedforward = dim_feedforward
        self.dropout = dropout
        self.augment = augment
        self.augment_copies = augment_copies
        self.augment_per_epoch = augment_per_epoch
        self.augment_stages = augment_stages
        self.pretrain_epochs = pretrain_epochs
        self.finetune_epochs = finetune_epochs
        self.finetune_max_size_nm = finetune_max_size_nm
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.finetune_lr_factor = finetune_lr_factor
        self.weight_decay = weight_decay
        self.condition_tokens = condition_tokens
        self.target_scale = target_scale
        self.ema_decay = ema_decay
        self.tolerance = tolerance
        self.shape_weight = shape_weight
        self.success_weight = success_weight
        self.validation_fraction = validation_fraction
        self.schedule = schedule
        self.lr_scaling = lr_scaling
        self.precision = precision
        self.fused_optimizer = fused_optimizer
        self.retrieval_k = retrieval_k
        self.retrieval_metric = retrieval_metric
        self.retrieval_aggregate = retrieval_aggregate
        self.retrieval_dropout = retrieval_dropout
        self.retrieval_residual = retrieval_residual
        self.retrieval_crossfit = retrieval_crossfit
        self.retrieval_forest = retrieval_forest
        self.retrieval_max_features = retrieval_max_features
        self.unknown_product = unknown_product
        self.encoder_params = encoder_params
        self.random_state = random_state
        self.n_threads = n_threads
        self.device = device

    # ------------------------------------------------------------------ fit

    def _check_params(self) -> None:
        _check_positive_int(self, ("d_model", "n_layers", "n_heads", "dim_feedforward", "batch_size", "augment_copies"))
        _check_positive_int(
            self,
            ("pretrain_epochs", "finetune_epochs", "augment_per_epoch"),
            allow_zero=("pretrain_epochs", "finetune_epochs", "augment_per_epoch", "retrieval_k"),
        )
        _check_positive_int(self, ("retrieval_k",), allow_zero=("retrieval_k",))
        for name, allowed in (
            ("schedule", ("cosine", "onecycle")),
            ("lr_scaling", ("sqrt", "linear", "none")),
            ("precision", ("auto", "bf16", "fp32")),
            ("augment_stages", ("pretrain", "finetune", "both")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.pretrain_epochs + self.finetune_epochs == 0:
            raise ValueError("pretrain_epochs and finetune_epochs are both 0: nothing to train")
        if not 0.0 <= self.validation_fraction < 0.5:
            raise ValueError(f"validation_fraction must be in [0, 0.5), got {self.validation_fraction!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        check_retrieval_params(self)
        if self.target_scale not in ("log", "linear"):
            raise ValueError(f"target_scale must be 'log' or 'linear', got {self.target_scale!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be None or in (0, 1), got {self.ema_decay!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.augment and not self.descriptors.intermediates:
            raise ValueError("augment=True needs a descriptor table with intermediates ('A@B' names); use augment=False")

    def _torch_device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def fit(
        self,
        recipes: Sequence[Recipe],
        y=None,
        *,
        failed_recipes: Sequence[Recipe] | None = None,
        progress: ProgressCallback | None = None,
        eval_set: tuple[Sequence[Recipe], Any] | None = None,
        eval_every: int = 1,
        groups: Sequence[Any] | None = None,
    ) -> SynthesisTransformer:
        """Train on ``recipes`` (sizes ``y`` in nm, NaN where unknown; default their outcomes).

        ``failed_recipes`` (no outcome needed) are the negatives of the success head; without
        them the success head is not trained and :meth:`predict_outcomes` reports no
        success probability.  ``eval_set=(recipes, sizes_nm)`` is scored every
        ``eval_every`` epochs (and at each stage's last) into :attr:`eval_history_`, for
        monitoring only: it never changes training or the kept weights.  ``groups`` (one per
        recipe, e.g. its publication) keep a recipe's own group out of its retrieval tokens
        while training.  Returns self.
        """
        import torch

        self._check_params()
        recipes, y = size_fit_targets(recipes, y)
        known = np.isfinite(y) & (y > 0)
        failed = list(failed_recipes or [])
        if int(eval_every) < 1:
            raise ValueError(f"eval_every must be a positive number of epochs, got {eval_every}")
        if eval_set is not None:
            eval_recipes, eval_y = list(eval_set[0]), np.asarray(eval_set[1], dtype=float).ravel()
            if len(eval_recipes) != len(eval_y) or not len(eval_y) or not np.isfinite(eval_y).all():
                raise ValueError(
                    "eval_set must be (recipes, sizes) of equal, non-zero length with finite sizes, "
                    f"got {len(eval_recipes)} recipes and {len(eval_y)} sizes"
                )
        if groups is not None:
            groups = np.asarray([str(g) for g in groups], dtype=object)
            if len(groups) != len(recipes):
                raise ValueError(f"{len(groups)} groups for {len(recipes)} recipes; give one group per recipe")
        rng = np.random.default_rng(self.random_state)

        # validation split: solid training recipes with a size (never the caller's held-out data)
        counts = np.array([r.outcome.n_particles if r.outcome and r.outcome.n_particles is not None else -1 for r in recipes])
        solid = np.flatnonzero(known & (counts >= SOLID_MIN_PARTICLES))
        if self.finetune_max_size_nm is not None:
            solid = solid[y[solid] <= self.finetune_max_size_nm]
        n_val = int(round(self.validation_fraction * len(solid))) if self.validation_fraction > 0 else 0
        val_rows = np.sort(rng.choice(solid, size=n_val, replace=False)) if n_val else np.zeros(0, dtype=int)
        is_val = np.zeros(len(recipes), dtype=bool)
        is_val[val_rows] = True
        train_rows = np.flatnonzero(~is_val)

        params = {"unknown_product": self.unknown_product, **(self.encoder_params or {})}
        train_recipes = [recipes[i] for i in train_rows]
        self.encoder_ = RecipeEncoder(self.descriptors, **params).fit(train_recipes + failed)
        fit_y = y[known & ~is_val]
        if self.target_scale == "log":
            log_y = np.log(fit_y)
            self.target_mean_, self.target_std_ = float(log_y.mean()), float(log_y.std() or 1.0)
        else:
            q1, median, q3 = np.percentile(fit_y, [25, 50, 75])
            self.target_mean_, self.target_std_ = float(median), float(q3 - q1 or 1.0)

        vocabulary: dict[str, int] = {}
        vectors: list[np.ndarray] = []
        originals = _Compact(self.encoder_, train_recipes, vocabulary, vectors)
        originals.size_nm = y[train_rows].astype(float)
        failed_set = _Compact(self.encoder_, failed, vocabulary, vectors) if failed else None
        if failed_set is not None:
            failed_set.success[:] = 0
            failed_set.size_nm[:] = np.nan
            failed_set.shape_index[:] = -1
        originals.success[:] = 1
        validation = _Compact(self.encoder_, [recipes[i] for i in val_rows], vocabulary, vectors) if n_val else None
        copies, copy_owner = None, None
        self.n_copies_ = 0
        augmented = {s for s in ("pretrain", "finetune") if self.augment_stages in (s, "both") and getattr(self, f"{s}_epochs") > 0}
        if self.augment and augmented:
            t0 = time.perf_counter()
            augmenter = IntermediateAugmenter(self.descriptors, n_copies=self.augment_copies, random_state=self.random_state)
            copy_recipes, owner = [], []
            for k, recipe in enumerate(train_recipes):
                for c in augmenter.augment(recipe):
                    copy_recipes.append(c)
                    owner.append(k)
            if copy_recipes:
                copies = _Compact(self.encoder_, copy_recipes, vocabulary, vectors)
                copy_owner = np.asarray(owner)
                copies.size_nm = originals.size_nm[copy_owner]
                copies.success[:] = 1
                self.n_copies_ = len(copy_recipes)
            logger.info("augmentation: %d copies of %d recipes in %.1f s", len(copy_recipes), len(train_recipes), time.perf_counter() - t0)

        monitored = None
        if eval_set is not None:  # encoded after the training sets: their descriptor rows stay as they are
            monitored = _Compact(self.encoder_, eval_recipes, vocabulary, vectors)
            monitored.size_nm = eval_y
        self.retrieval_ = None
        if self.retrieval_k:
            others = [(failed_set, failed), (validation, [recipes[i] for i in val_rows])]
            others.append((monitored, eval_recipes if eval_set is not None else None))
            g = None if groups is None else groups[train_rows]
            self.retrieval_ = attach_neighbours(self, train_recipes, y[train_rows], originals, copies, copy_owner, others, g)
        self.eval_history_ = []
        device = self._torch_device()
        matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, self.descriptors.dim), np.float32)
        self.history_ = {"pretrain": [], "finetune": []}
        self.best_epoch_ = {}
        self.has_success_ = failed_set is not None
        with torch_threads(self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            net = build_network(
                self.encoder_.token_dim,
                4,
                self.d_model,
                self.n_layers,
                self.n_heads,
                self.dim_feedforward,
                self.dropout,
                len(SHAPE_CLASSES),
                self.condition_tokens,
                TOKEN_WIDTH if self.retrieval_k else 0,
                self.retrieval_residual,
            ).to(device)
            descriptor_matrix = torch.from_numpy(matrix).to(device)
            used = np.unique(
                np.concatenate([originals.index[originals.mask]] + ([failed_set.index[failed_set.mask]] if failed_set else []))
            )
            with torch.no_grad():
                stats = descriptor_matrix[torch.from_numpy(used).to(device)]
                net.descriptor_mean.copy_(stats.mean(0))
                net.descriptor_std.copy_(stats.std(0).clamp(min=1e-6))
            stages = []
            if self.pretrain_epochs > 0:
                stages.append(("pretrain", self.pretrain_epochs, self.learning_rate, None))
            if self.finetune_epochs > 0:
                factor = self.finetune_lr_factor if self.pretrain_epochs > 0 else 1.0
                stages.append(("finetune", self.finetune_epochs, self.learning_rate * factor, self.finetune_max_size_nm))
            for stage, n_epochs, lr, max_size in stages:

                def epoch_sets(epoch_rng, stage=stage):
                    sets = [originals] + ([failed_set] if failed_set is not None else [])
                    if stage in augmented and copies is not None and self.augment_per_epoch > 0:
                        sets.append(_sample_copies(copies, copy_owner, self.augment_per_epoch, epoch_rng))
                    return sets

                run_stage(
                    self,
                    net,
                    stage,
                    n_epochs,
                    lr,
                    max_size,
                    epoch_sets,
                    validation,
                    descriptor_matrix,
                    device,
                    rng,
                    progress,
                    (monitored, int(eval_every)),
                )
        net.eval()
        self.net_ = net.cpu()
        return self

    def _target(self, size_nm: np.ndarray) -> np.ndarray:
        """Sizes (nm) on the network's target scale (what retrieval tokens carry)."""
        if self.target_scale == "log":
            return (np.log(size_nm) - self.target_mean_) / self.target_std_
        return (size_nm - self.target_mean_) / self.target_std_

    def _neighbours(self, recipes: Sequence[Recipe]) -> np.ndarray:
        """Retrieval tokens of ``recipes`` from the bank (all of it: the training recipes)."""
        return recipe_tokens(self, recipes)

    def _size_loss(self, huber, size_out, b, max_size):
        """The size loss of one batch (:func:`~nc_synthmodel.models.trainer.size_loss`)."""
        return size_loss(self, huber, size_out, b, max_size)

    # ------------------------------------------------------------------ predict

    def _size_nm(self, output):
        """Network size output → nm (the inverse of the target scaling; at least 0.1 nm)."""
        import torch

        value = output * self.target_std_ + self.target_mean_
        return torch.exp(value) if self.target_scale == "log" else value.clamp(min=_MIN_SIZE_NM)

    def _predict_compact(self, net, data: _Compact, descriptor_matrix, device) -> dict[str, np.ndarray]:
        import torch

        net.eval()
        sizes, shapes, successes = [], [], []
        with torch.no_grad():
            for start in range(0, len(data), 1024):
                part = slice(start, start + 1024)
                width = max(1, int(data.mask[part].sum(axis=1).max()))
                idx = torch.from_numpy(data.index[part, :width]).to(device)
                neighbours = torch.from_numpy(data.neighbours[part]).to(device) if data.neighbours.shape[1] else None
                size, shape, success = net(
                    torch.from_numpy(data.prefix[part, :width]).to(device),
                    descriptor_matrix[idx],
                    torch.from_numpy(data.mask[part, :width]).to(device),
                    torch.from_numpy(data.conditions[part]).to(device),
                    neighbours,
                )
                sizes.append(self._size_nm(size).cpu().numpy())
                shapes.append(torch.softmax(shape, dim=1).cpu().numpy())
                successes.append(torch.sigmoid(success).cpu().numpy())
        return {
            "size_nm": np.concatenate(sizes).astype(float),
            "shape_probabilities": np.concatenate(shapes),
            "success_probability": np.concatenate(successes).astype(float),
        }

    def _predict_all(self, recipes: Sequence[Recipe]) -> dict[str, np.ndarray]:
        import torch

        check_is_fitted(self, "net_")
        recipes = list(recipes)
        vocabulary: dict[str, int] = {}
        vectors: list[np.ndarray] = []
        data = _Compact(self.encoder_, recipes, vocabulary, vectors)
        data.neighbours = self._neighbours(recipes)
        matrix = torch.from_numpy(np.stack(vectors).astype(np.float32)) if vectors else torch.zeros(1, self.descriptors.dim)
        with torch_threads(self.n_threads):
            return self._predict_compact(self.net_, data, matrix, torch.device("cpu"))

    def predict(self, recipes: Sequence[Recipe]) -> np.ndarray:
        """Predicted mean size (nm) of each recipe, float64 (n,)."""
        recipes = list(recipes)
        if not recipes:
            return np.zeros(0)
        return self._predict_all(recipes)["size_nm"]

    def predict_outcomes(self, recipes: Sequence[Recipe]) -> list[dict[str, Any]]:
        """Size, shape (with class probabilities) and success probability per recipe.

        Each dict: ``size_nm``, ``shape``, ``shape_probabilities`` ({class: p}) and
        ``success_probability`` (None when the model was trained without failed recipes).
        """
        recipes = list(recipes)
        if not recipes:
            return []
        out = self._predict_all(recipes)
        results = []
        for i in range(len(recipes)):
            probs = out["shape_probabilities"][i]
            results.append(
                {
                    "id": recipes[i].id,
                    "size_nm": float(out["size_nm"][i]),
                    "shape": SHAPE_CLASSES[int(np.argmax(probs))],
                    "shape_probabilities": {c: float(p) for c, p in zip(SHAPE_CLASSES, probs)},
                    "success_probability": float(out["success_probability"][i]) if self.has_success_ else None,
                }
            )
        return results

    # ------------------------------------------------------------------ save / load

    _SAVED_PARAMS = (
        "d_model",
        "n_layers",
        "n_heads",
        "dim_feedforward",
        "dropout",
        "augment",
        "augment_copies",
        "augment_per_epoch",
        "augment_stages",
        "pretrain_epochs",
        "finetune_epochs",
        "finetune_max_size_nm",
        "batch_size",
        "learning_rate",
        "finetune_lr_factor",
        "weight_decay",
        "condition_tokens",
        "target_scale",
        "ema_decay",
        "tolerance",
        "shape_weight",
        "success_weight",
        "validation_fraction",
        "schedule",
        "lr_scaling",
        "precision",
        "fused_optimizer",
        "retrieval_k",
        "retrieval_metric",
        "retrieval_aggregate",
        "retrieval_dropout",
        "retrieval_residual",
        "retrieval_crossfit",
        "retrieval_forest",
        "retrieval_max_features",
        "unknown_product",
        "encoder_params",
        "random_state",
    )

    def save(self, directory: str | os.PathLike, *, metadata: dict | None = None) -> Path:
        """Write ``weights.safetensors``, ``model.json`` and ``descriptors.npz`` into ``directory`` (atomically each)."""
        return save_transformer(self, directory, metadata=metadata)

    @classmethod
    def load(cls, directory: str | os.PathLike, descriptors: DescriptorTable | None = None, *, fallback=None) -> SynthesisTransformer:
        """Load a model saved by :meth:`save`.

        ``descriptors`` defaults to the table saved with the model; ``fallback`` (a
        function name -> vector of the same length, e.g. computed descriptors) is attached to
        it for chemicals the table lacks.  An explicit table must match the saved one.
        """
        return load_transformer(cls, directory, descriptors, fallback=fallback)
