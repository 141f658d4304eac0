"""The synthesis transformer (Gu, Liang et al., ACS Nano 2025): recipe → size, shape, success.

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

import copy
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from .augment import IntermediateAugmenter
from .baselines import _torch_threads
from .contract import SHAPE_CLASSES, Recipe
from .dataset import SOLID_MIN_PARTICLES
from .descriptors import DescriptorTable
from .encoding import TOKEN_PREFIX, RecipeEncoder
from .evaluation import PAPER_TOLERANCE, size_targets, tolerant_size_mask
from .io import atomic_write_bytes

__all__ = ["DEFAULT_MODEL_DIR", "MODEL_BOUNDS", "ModelFormatError", "SynthesisTransformer", "TRANSFORMER_PRESETS", "default_model", "make_model", "model_names"]

logger = logging.getLogger(__name__)

_FORMAT = "nc-synthmodel.SynthesisTransformer"
_FORMAT_VERSION = 1
_WEIGHTS = "weights.safetensors"
_CONFIG = "model.json"
_DESCRIPTORS = "descriptors.npz"
#: Floor of a linear-scale size prediction (a regression output can go negative).
_MIN_SIZE_NM = 0.1
#: Parameters added after models were first saved, with the value those models used.
_LEGACY_PARAMS = {"condition_tokens": False, "target_scale": "log", "ema_decay": None}
#: Where the shipped default model lives (inside the installed package).
DEFAULT_MODEL_DIR = Path(__file__).with_name("data") / "default_model"

#: Progress callback: ``progress(stage, epoch, n_epochs, metrics)``.
ProgressCallback = Callable[[str, int, int, dict], None]


class ModelFormatError(ValueError):
    """A model directory is missing files or holds something that is not a saved model."""


#: Upper bounds of a saved model's network size, checked by :meth:`SynthesisTransformer.load`
#: before anything is built (the shipped model: d_model 128, 4 layers, 4 heads, feed-forward 256).
MODEL_BOUNDS = {"d_model": 4096, "n_layers": 64, "n_heads": 64, "dim_feedforward": 16384, "parameters": 200_000_000}


def _check_saved_params(config_path: Path, params) -> dict:
    """The ``params`` of a saved config, refused (naming the file) if absurd or of the wrong type."""
    if not isinstance(params, dict):
        raise ModelFormatError(f"{config_path}: \"params\" must be an object, not {type(params).__name__}")
    for name in ("d_model", "n_layers", "n_heads", "dim_feedforward"):
        value = params.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MODEL_BOUNDS[name]:
            raise ModelFormatError(f"{config_path}: params.{name} = {value!r}; expected a whole number 1..{MODEL_BOUNDS[name]:,}")
    d, layers, ff = params["d_model"], params["n_layers"], params["dim_feedforward"]
    n_parameters = layers * (4 * d * d + 2 * d * ff)
    if n_parameters > MODEL_BOUNDS["parameters"]:
        raise ModelFormatError(
            f"{config_path}: the configured network has ~{n_parameters:,} parameters (d_model {d}, {layers} layers, "
            f"feed-forward {ff}); at most {MODEL_BOUNDS['parameters']:,}"
        )
    if d % params["n_heads"]:
        raise ModelFormatError(f"{config_path}: params.d_model ({d}) is not divisible by params.n_heads ({params['n_heads']})")
    return params


def _network(token_dim: int, n_conditions: int, d_model: int, n_layers: int, n_heads: int,
             dim_feedforward: int, dropout: float, n_shapes: int, condition_tokens: bool = False):
    """Build the network (torch is imported only here).

    ``condition_tokens`` appends the scaled conditions to every token's features (the
    authors' code does), so attention can weigh chemicals by temperature and time.
    """
    import torch
    from torch import nn

    def head(n_in: int, n_out: int) -> nn.Module:
        return nn.Sequential(nn.Linear(n_in, d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_model, n_out))

    class SynthesisNet(nn.Module):
        def __init__(self):
            super().__init__()
            descriptor_dim = token_dim - TOKEN_PREFIX
            self.register_buffer("descriptor_mean", torch.zeros(descriptor_dim))
            self.register_buffer("descriptor_std", torch.ones(descriptor_dim))
            self.embed = nn.Linear(token_dim + (n_conditions if condition_tokens else 0), d_model)
            self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
            layer = nn.TransformerEncoderLayer(
                d_model, n_heads, dim_feedforward, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
            self.size_head = head(d_model + n_conditions, 1)
            self.shape_head = head(d_model + n_conditions, n_shapes)
            self.success_head = head(d_model + n_conditions, 1)

        def forward(self, prefix, descriptors, mask, conditions):
            """``prefix`` (B, T, 2), ``descriptors`` (B, T, dim) raw, ``mask`` (B, T) True = real."""
            desc = (descriptors - self.descriptor_mean) / self.descriptor_std
            desc = desc * mask.unsqueeze(-1)  # padding stays all-zero
            features = [prefix, desc]
            if condition_tokens:
                features.append(conditions.unsqueeze(1).expand(-1, prefix.shape[1], -1))
            x = self.embed(torch.cat(features, dim=-1))
            batch = x.shape[0]
            x = torch.cat([self.cls.expand(batch, -1, -1), x], dim=1)
            padding = torch.cat([torch.zeros(batch, 1, dtype=torch.bool, device=mask.device), ~mask], dim=1)
            h = self.encoder(x, src_key_padding_mask=padding)[:, 0]
            z = torch.cat([h, conditions], dim=1)
            return self.size_head(z).squeeze(1), self.shape_head(z), self.success_head(z).squeeze(1)

    return SynthesisNet()


class _Compact:
    """Recipes as vocabulary indices + scaled amounts (what the training loop gathers from)."""

    def __init__(self, encoder: RecipeEncoder, recipes: list[Recipe], vocabulary: dict[str, int],
                 vectors: list[np.ndarray], chunk: int = 2048):
        n = len(recipes)
        self.index = np.zeros((n, encoder.n_tokens), dtype=np.int64)
        self.prefix = np.zeros((n, encoder.n_tokens, TOKEN_PREFIX), dtype=np.float32)
        self.mask = np.zeros((n, encoder.n_tokens), dtype=bool)
        self.conditions = np.zeros((n, 4), dtype=np.float32)
        self.size_nm = np.full(n, np.nan)
        self.n_particles = np.full(n, -1, dtype=np.int64)
        self.shape_index = np.full(n, -1, dtype=np.int64)
        self.success = np.full(n, -1, dtype=np.int8)
        for start in range(0, n, chunk):
            part = slice(start, min(n, start + chunk))
            enc = encoder.transform(recipes[part])
            self.prefix[part] = enc.tokens[:, :, :TOKEN_PREFIX]
            self.mask[part] = enc.mask
            self.conditions[part] = enc.conditions
            self.size_nm[part] = enc.size_nm
            self.n_particles[part] = enc.n_particles
            self.shape_index[part] = enc.shape_index
            self.success[part] = enc.success
            for (i, j) in zip(*np.nonzero(enc.mask)):
                name = enc.names[i, j]
                code = vocabulary.get(name)
                if code is None:
                    code = vocabulary[name] = len(vectors)
                    vectors.append(enc.tokens[i, j, TOKEN_PREFIX:].copy())
                self.index[start + i, j] = code
        # real tokens first (the encoder has no positions, so order is free): batches can
        # then drop the all-padding tail
        order = np.argsort(~self.mask, axis=1, kind="stable")
        self.index = np.take_along_axis(self.index, order, axis=1)
        self.prefix = np.take_along_axis(self.prefix, order[:, :, None], axis=1)
        self.mask = np.take_along_axis(self.mask, order, axis=1)

    def __len__(self) -> int:
        return len(self.index)


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
        Copies generated per recipe; copies drawn per recipe and pretraining epoch.
    pretrain_epochs, finetune_epochs : int
        Epochs of each stage (0 skips the stage).
    finetune_max_size_nm : float or None
        Fine-tune the size head only on recipes up to this size.
    batch_size, learning_rate, weight_decay
        AdamW with linear warm-up (first 5 % of steps) and cosine decay, per stage
        (fine-tuning starts at ``finetune_lr_factor`` × the rate).
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
        self.unknown_product = unknown_product
        self.encoder_params = encoder_params
        self.random_state = random_state
        self.n_threads = n_threads
        self.device = device

    # ------------------------------------------------------------------ fit

    def _check_params(self) -> None:
        _check_positive_int(self, ("d_model", "n_layers", "n_heads", "dim_feedforward", "batch_size", "augment_copies"))
        _check_positive_int(self, ("pretrain_epochs", "finetune_epochs", "augment_per_epoch"),
                            allow_zero=("pretrain_epochs", "finetune_epochs", "augment_per_epoch"))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.pretrain_epochs + self.finetune_epochs == 0:
            raise ValueError("pretrain_epochs and finetune_epochs are both 0: nothing to train")
        if not 0.0 <= self.validation_fraction < 0.5:
            raise ValueError(f"validation_fraction must be in [0, 0.5), got {self.validation_fraction!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
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

    def fit(self, recipes: Sequence[Recipe], y=None, *, failed_recipes: Sequence[Recipe] | None = None,
            progress: ProgressCallback | None = None, eval_set: tuple[Sequence[Recipe], Any] | None = None,
            eval_every: int = 1) -> SynthesisTransformer:
        """Train on ``recipes`` (sizes ``y`` in nm, NaN where unknown; default their outcomes).

        ``failed_recipes`` (no outcome needed) are the negatives of the success head; without
        them the success head is not trained and :meth:`predict_outcomes` reports no
        success probability.  ``eval_set=(recipes, sizes_nm)`` is scored every
        ``eval_every`` epochs (and at each stage's last) into :attr:`eval_history_`, for
        monitoring only: it never changes training or the kept weights.  Returns self.
        """
        import torch

        self._check_params()
        recipes = list(recipes)
        if not recipes:
            raise ValueError("cannot fit on no recipes")
        y = size_targets(recipes) if y is None else np.asarray(y, dtype=float).ravel()
        if len(y) != len(recipes):
            raise ValueError(f"{len(y)} targets for {len(recipes)} recipes")
        known = np.isfinite(y) & (y > 0)
        if not known.any():
            raise ValueError("no recipe has a known size to train on")
        failed = list(failed_recipes or [])
        if int(eval_every) < 1:
            raise ValueError(f"eval_every must be a positive number of epochs, got {eval_every}")
        if eval_set is not None:
            eval_recipes, eval_y = list(eval_set[0]), np.asarray(eval_set[1], dtype=float).ravel()
            if len(eval_recipes) != len(eval_y) or not len(eval_y) or not np.isfinite(eval_y).all():
                raise ValueError("eval_set must be (recipes, sizes) of equal, non-zero length with finite sizes, "
                                 f"got {len(eval_recipes)} recipes and {len(eval_y)} sizes")
        rng = np.random.default_rng(self.random_state)

        # validation split: solid training recipes with a size (never the caller's held-out data)
        counts = np.array([r.outcome.n_particles if r.outcome and r.outcome.n_particles is not None else -1
                           for r in recipes])
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
        if self.augment and self.pretrain_epochs > 0:
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
            logger.info("augmentation: %d copies of %d recipes in %.1f s", len(copy_recipes), len(train_recipes),
                        time.perf_counter() - t0)

        monitored = None
        if eval_set is not None:  # encoded after the training sets: their descriptor rows stay as they are
            monitored = _Compact(self.encoder_, eval_recipes, vocabulary, vectors)
            monitored.size_nm = eval_y
        self.eval_history_ = []
        device = self._torch_device()
        matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, self.descriptors.dim), np.float32)
        self.history_ = {"pretrain": [], "finetune": []}
        self.best_epoch_ = {}
        self.has_success_ = failed_set is not None
        with _torch_threads(self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            net = _network(self.encoder_.token_dim, 4, self.d_model, self.n_layers, self.n_heads,
                           self.dim_feedforward, self.dropout, len(SHAPE_CLASSES), self.condition_tokens).to(device)
            descriptor_matrix = torch.from_numpy(matrix).to(device)
            used = np.unique(np.concatenate([originals.index[originals.mask]] +
                                            ([failed_set.index[failed_set.mask]] if failed_set else [])))
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
                    if stage == "pretrain" and copies is not None and self.augment_per_epoch > 0:
                        sets.append(_sample_copies(copies, copy_owner, self.augment_per_epoch, epoch_rng))
                    return sets

                self._run_stage(net, stage, n_epochs, lr, max_size, epoch_sets, validation,
                                descriptor_matrix, device, rng, progress, (monitored, int(eval_every)))
        net.eval()
        self.net_ = net.cpu()
        return self

    def _run_stage(self, net, stage, n_epochs, lr, max_size, epoch_sets, validation, descriptor_matrix,
                   device, rng, progress, monitor) -> None:
        import torch

        optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=self.weight_decay)
        n_rows = sum(len(s) for s in epoch_sets(np.random.default_rng(0)))
        steps_per_epoch = max(1, math.ceil(n_rows / self.batch_size))
        total = steps_per_epoch * n_epochs
        warmup = max(1, int(0.05 * total))

        def lr_at(step):
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))) * 0.95 + 0.05

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
        ema = None
        if self.ema_decay is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay), use_buffers=True)
        scored = ema.module if ema is not None else net
        huber = torch.nn.HuberLoss(delta=1.0, reduction="none")
        best = (math.inf, -1, None)
        for epoch in range(n_epochs):
            net.train()
            batches = _Batches(epoch_sets(rng), self.batch_size, rng, device, descriptor_matrix)
            totals = np.zeros(3)
            seen = 0
            for b in batches:
                size_out, shape_out, success_out = net(b["prefix"], b["descriptors"], b["mask"], b["conditions"])
                loss_size = self._size_loss(huber, size_out, b, max_size)
                loss_shape = _masked_ce(shape_out, b["shape"])
                loss_success = _masked_bce(success_out, b["success"]) if self.has_success_ else size_out.sum() * 0
                loss = loss_size + self.shape_weight * loss_shape + self.success_weight * loss_success
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(net)
                n = len(b["size"])
                totals += n * np.array([float(loss_size.detach()), float(loss_shape.detach()), float(loss_success.detach())])
                seen += n
            record = {"epoch": epoch, "size_loss": totals[0] / seen, "shape_loss": totals[1] / seen,
                      "success_loss": totals[2] / seen}
            if validation is not None:
                pred = self._predict_compact(scored, validation, descriptor_matrix, device)["size_nm"]
                record["val_MAE"] = float(np.mean(np.abs(pred - validation.size_nm)))
                if record["val_MAE"] < best[0]:
                    best = (record["val_MAE"], epoch, copy.deepcopy(scored.state_dict()))
            monitored, eval_every = monitor
            if monitored is not None and ((epoch + 1) % eval_every == 0 or epoch == n_epochs - 1):
                pred = self._predict_compact(scored, monitored, descriptor_matrix, device)["size_nm"]
                self.eval_history_.append({"stage": stage, "epoch": epoch, "MAE": float(np.mean(np.abs(pred - monitored.size_nm))),
                                           "size_nm": pred.tolist()})
            self.history_[stage].append(record)
            logger.info("%s epoch %d/%d: %s", stage, epoch + 1, n_epochs,
                        ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch"))
            if progress is not None:
                progress(stage, epoch + 1, n_epochs, record)
        if best[2] is not None:
            net.load_state_dict(best[2])
            self.best_epoch_[stage] = best[1]
        else:
            if ema is not None:
                net.load_state_dict(ema.module.state_dict())
            self.best_epoch_[stage] = n_epochs - 1

    def _size_loss(self, huber, size_out, b, max_size):
        import torch

        size_nm = b["size"]
        known = torch.isfinite(size_nm) & (size_nm > 0)
        if max_size is not None:
            known &= size_nm <= max_size
        if not bool(known.any()):
            return size_out.sum() * 0
        if self.target_scale == "log":
            target = (torch.log(size_nm.clamp(min=1e-6)) - self.target_mean_) / self.target_std_
        else:
            target = (size_nm - self.target_mean_) / self.target_std_
        loss = huber(size_out, torch.where(known, target, torch.zeros_like(target)))
        keep = known
        if self.tolerance is not None:
            pred_nm = self._size_nm(size_out.detach())
            keep = keep & tolerant_size_mask(pred_nm, size_nm, b["n_particles"], tolerance=self.tolerance)
        keep = keep.float()
        return (loss * keep).sum() / known.float().sum().clamp(min=1.0)

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
                size, shape, success = net(
                    torch.from_numpy(data.prefix[part, :width]).to(device), descriptor_matrix[idx],
                    torch.from_numpy(data.mask[part, :width]).to(device),
                    torch.from_numpy(data.conditions[part]).to(device),
                )
                sizes.append(self._size_nm(size).cpu().numpy())
                shapes.append(torch.softmax(shape, dim=1).cpu().numpy())
                successes.append(torch.sigmoid(success).cpu().numpy())
        return {"size_nm": np.concatenate(sizes).astype(float), "shape_probabilities": np.concatenate(shapes),
                "success_probability": np.concatenate(successes).astype(float)}

    def _predict_all(self, recipes: Sequence[Recipe]) -> dict[str, np.ndarray]:
        import torch

        check_is_fitted(self, "net_")
        recipes = list(recipes)
        vocabulary: dict[str, int] = {}
        vectors: list[np.ndarray] = []
        data = _Compact(self.encoder_, recipes, vocabulary, vectors)
        matrix = torch.from_numpy(np.stack(vectors).astype(np.float32)) if vectors else torch.zeros(1, self.descriptors.dim)
        with _torch_threads(self.n_threads):
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
            results.append({
                "id": recipes[i].id,
                "size_nm": float(out["size_nm"][i]),
                "shape": SHAPE_CLASSES[int(np.argmax(probs))],
                "shape_probabilities": {c: float(p) for c, p in zip(SHAPE_CLASSES, probs)},
                "success_probability": float(out["success_probability"][i]) if self.has_success_ else None,
            })
        return results

    # ------------------------------------------------------------------ save / load

    _SAVED_PARAMS = ("d_model", "n_layers", "n_heads", "dim_feedforward", "dropout", "augment", "augment_copies",
                     "augment_per_epoch", "pretrain_epochs", "finetune_epochs", "finetune_max_size_nm", "batch_size",
                     "learning_rate", "finetune_lr_factor", "weight_decay", "condition_tokens", "target_scale",
                     "ema_decay", "tolerance", "shape_weight",
                     "success_weight", "validation_fraction", "unknown_product", "encoder_params", "random_state")

    def save(self, directory: str | os.PathLike, *, metadata: dict | None = None) -> Path:
        """Write ``weights.safetensors`` and ``model.json`` into ``directory`` (atomically each)."""
        from safetensors.torch import save as save_tensors

        check_is_fitted(self, "net_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net_.state_dict().items()}
        config = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "params": {k: getattr(self, k) for k in self._SAVED_PARAMS},
            "encoder": self.encoder_.to_dict(),
            "target_mean": self.target_mean_,
            "target_std": self.target_std_,
            "has_success": self.has_success_,
            "shape_classes": list(SHAPE_CLASSES),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "metadata": metadata or {},
        }
        table = io.BytesIO()
        np.savez(table, names=np.array(self.descriptors.names, dtype=str),
                 descriptors=self.descriptors.lookup(list(self.descriptors.names)))
        atomic_write_bytes(directory / _DESCRIPTORS, table.getvalue())
        atomic_write_bytes(directory / _WEIGHTS, save_tensors(state))
        atomic_write_bytes(directory / _CONFIG, json.dumps(config, indent=1).encode("utf-8"))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, descriptors: DescriptorTable | None = None, *,
             fallback=None) -> SynthesisTransformer:
        """Load a model saved by :meth:`save`.

        ``descriptors`` defaults to the table saved with the model; ``fallback`` (a
        function name → vector of the same length, e.g. computed descriptors) is attached to
        it for chemicals the table lacks.  An explicit table must match the saved one.
        """
        from safetensors.torch import load_file

        from .encoding import _fingerprint

        directory = Path(directory)
        if descriptors is None:
            if not (directory / _DESCRIPTORS).is_file():
                raise ModelFormatError(f"{directory}: not a saved SynthesisTransformer ({_DESCRIPTORS} missing)")
            descriptors = DescriptorTable.from_npz(directory / _DESCRIPTORS, fallback=fallback)
        config_path, weights_path = directory / _CONFIG, directory / _WEIGHTS
        for path in (config_path, weights_path):
            if not path.is_file():
                raise ModelFormatError(f"{directory}: not a saved SynthesisTransformer ({path.name} missing)")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{config_path}: not valid JSON ({exc})") from None
        if not isinstance(config, dict) or config.get("format") != _FORMAT:
            raise ModelFormatError(f"{config_path}: not a {_FORMAT} file")
        if config.get("format_version") != _FORMAT_VERSION:
            raise ModelFormatError(f"{config_path}: format version {config.get('format_version')!r}, "
                                   f"this library reads {_FORMAT_VERSION}")
        if config.get("shape_classes") != list(SHAPE_CLASSES):
            raise ModelFormatError(f"{config_path}: trained with other shape classes {config.get('shape_classes')}")
        if not isinstance(config.get("encoder"), dict):
            raise ModelFormatError(f"{config_path}: \"encoder\" is missing or not an object")
        if _fingerprint(descriptors) != config["encoder"].get("descriptor_fingerprint"):
            raise ModelFormatError(
                f"{directory}: the descriptor table given ({descriptors!r}) differs from the one the model was "
                f"trained with; load without `descriptors` to use the table saved in {_DESCRIPTORS}"
            )
        params = _check_saved_params(config_path, config.get("params"))
        unknown = sorted(set(params) - set(cls._SAVED_PARAMS))
        if unknown:
            raise ModelFormatError(f"{config_path}: unknown parameter(s) {unknown}")
        model = cls(descriptors, **{**_LEGACY_PARAMS, **params})
        try:
            model.encoder_ = RecipeEncoder.from_dict(config["encoder"], descriptors)
            model.target_mean_, model.target_std_ = float(config["target_mean"]), float(config["target_std"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{config_path}: bad encoder or target scale ({type(exc).__name__}: {exc})") from None
        model.has_success_ = bool(config["has_success"])
        model.history_ = config.get("history", {})
        model.best_epoch_ = config.get("best_epoch", {})
        model.metadata_ = config.get("metadata", {})
        net = _network(model.encoder_.token_dim, 4, model.d_model, model.n_layers, model.n_heads,
                       model.dim_feedforward, model.dropout, len(SHAPE_CLASSES), model.condition_tokens)
        try:
            state = load_file(str(weights_path))
        except Exception as exc:  # safetensors raises its own error types
            raise ModelFormatError(f"{weights_path}: unreadable weights ({exc})") from None
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelFormatError(f"{weights_path}: weights do not fit the saved configuration ({exc})") from None
        net.eval()
        model.net_ = net
        return model


def default_model() -> SynthesisTransformer:
    """The model shipped in the package (trained on the full Gu et al. dataset with computed descriptors)."""
    if not (DEFAULT_MODEL_DIR / _CONFIG).is_file():
        raise FileNotFoundError(
            f"no default model is installed at {DEFAULT_MODEL_DIR}; train one with `nc-synthmodel train` "
            "and load it with SynthesisTransformer.load(directory, descriptors)"
        )
    fallback = None
    try:  # chemicals outside the saved vocabulary: computed from structure (needs the [chem] extra)
        from .computed import ComputedDescriptors

        fallback = ComputedDescriptors().fit().descriptor
    except ImportError:
        pass
    return SynthesisTransformer.load(DEFAULT_MODEL_DIR, fallback=fallback)


# ---------------------------------------------------------------------- helpers


def _sample_copies(copies: _Compact, owner: np.ndarray, per_recipe: int, rng: np.random.Generator) -> _Compact:
    """Up to ``per_recipe`` random copies of each recipe (a view-like subset of ``copies``)."""
    order = rng.permutation(len(owner))
    taken: dict[int, int] = {}
    chosen = []
    for i in order:
        k = owner[i]
        if taken.get(k, 0) < per_recipe:
            taken[k] = taken.get(k, 0) + 1
            chosen.append(i)
    chosen = np.sort(np.asarray(chosen, dtype=int))
    subset = object.__new__(_Compact)
    for name in ("index", "prefix", "mask", "conditions", "size_nm", "n_particles", "shape_index", "success"):
        setattr(subset, name, getattr(copies, name)[chosen])
    return subset


class _Batches:
    """Shuffled mini-batches over several :class:`_Compact` sets, as torch tensors.

    Rows of similar token count share a batch (random within a count, batches in random
    order) and each batch keeps only its longest row's tokens: recipes hold ~6 of the 14
    token slots, so this halves the encoder's work without changing any row's input.
    """

    def __init__(self, sets, batch_size, rng, device, descriptor_matrix):
        self.fields = {name: np.concatenate([getattr(s, name) for s in sets])
                       for name in ("index", "prefix", "mask", "conditions", "size_nm", "n_particles",
                                    "shape_index", "success")}
        n_tokens = self.fields["mask"].sum(axis=1)
        by_length = np.lexsort((rng.random(len(n_tokens)), n_tokens))
        batches = [by_length[start:start + batch_size] for start in range(0, len(by_length), batch_size)]
        self.batches = [batches[k] for k in rng.permutation(len(batches))]
        self.device, self.matrix = device, descriptor_matrix

    def __iter__(self):
        import torch

        f, dev = self.fields, self.device
        for rows in self.batches:
            if len(rows) < 2:  # a single-row batch gives no useful gradient statistics
                continue
            width = max(1, int(f["mask"][rows].sum(axis=1).max()))
            idx = torch.from_numpy(f["index"][rows, :width]).to(dev)
            yield {
                "prefix": torch.from_numpy(f["prefix"][rows, :width]).to(dev),
                "descriptors": self.matrix[idx],
                "mask": torch.from_numpy(f["mask"][rows, :width]).to(dev),
                "conditions": torch.from_numpy(f["conditions"][rows]).to(dev),
                "size": torch.from_numpy(f["size_nm"][rows].astype(np.float32)).to(dev),
                "n_particles": torch.from_numpy(f["n_particles"][rows]).to(dev),
                "shape": torch.from_numpy(f["shape_index"][rows]).to(dev),
                "success": torch.from_numpy(f["success"][rows].astype(np.int64)).to(dev),
            }


def _masked_ce(logits, target):
    import torch

    known = target >= 0
    if not bool(known.any()):
        return logits.sum() * 0
    return torch.nn.functional.cross_entropy(logits[known], target[known])


def _masked_bce(logits, target):
    import torch

    known = target >= 0
    if not bool(known.any()):
        return logits.sum() * 0
    return torch.nn.functional.binary_cross_entropy_with_logits(logits[known], target[known].float())


# ---------------------------------------------------------------------- registry

#: Transformer presets: the paper's architecture, and the same without augmentation.
TRANSFORMER_PRESETS: dict[str, dict[str, Any]] = {
    "transformer": {},
    "transformer-noaug": {"augment": False},
}


def make_model(name: str, descriptors: DescriptorTable, **params) -> Any:
    """An unfitted size model by name: a transformer preset or a baseline (DT, RF, GB, DNN, LSTM)."""
    from .baselines import BASELINES

    if name in TRANSFORMER_PRESETS:
        return SynthesisTransformer(descriptors, **{**TRANSFORMER_PRESETS[name], **params})
    if name in BASELINES:
        return BASELINES[name](descriptors, **params)
    raise ValueError(f"unknown model {name!r}; choose from {sorted(TRANSFORMER_PRESETS) + sorted(BASELINES)}")


def model_names() -> list[str]:
    """Names accepted by :func:`make_model`."""
    from .baselines import BASELINES

    return list(TRANSFORMER_PRESETS) + list(BASELINES)
