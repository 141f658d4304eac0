"""The transformer's training loop: compact recipe arrays, batches, losses and one training stage.

:class:`_Compact` holds recipes as vocabulary indices + scaled amounts (the descriptor rows are
gathered per batch); :class:`_Batches` groups rows of similar length; :func:`run_stage` trains
one stage (pretraining or fine-tuning) of a :class:`~nc_synthmodel.models.SynthesisTransformer`
in place - AdamW (fused where torch has it), linear warm-up then cosine decay or a one-cycle
schedule, the learning rate scaled with the batch size, bfloat16 autocast where the hardware
computes it natively (:func:`native_bf16`), optional weight EMA, early stopping on the internal
validation split.
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np

from ..contract import Recipe
from ..features.encoding import TOKEN_PREFIX, RecipeEncoder
from ..targets import tolerant_size_mask

logger = logging.getLogger(__name__)

#: Per-recipe arrays of a :class:`_Compact` (what batches gather).
_FIELDS = ("index", "prefix", "mask", "conditions", "size_nm", "n_particles", "shape_index", "success", "neighbours")
#: Learning-rate scaling with the batch size, relative to a batch of this many recipes.
REFERENCE_BATCH = 128


def native_bf16(device) -> bool:
    """Whether ``device`` computes bfloat16 natively (CUDA with bf16, or a CPU with AVX512-BF16 / AMX)."""
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def scaled_lr(lr: float, batch_size: int, scaling: str) -> float:
    """``lr`` (given for a batch of :data:`REFERENCE_BATCH`) for ``batch_size``: ``none``, ``sqrt`` or ``linear``."""
    ratio = batch_size / REFERENCE_BATCH
    return lr * {"none": 1.0, "sqrt": math.sqrt(ratio), "linear": ratio}[scaling]


class _Compact:
    """Recipes as vocabulary indices + scaled amounts (what the training loop gathers from)."""

    def __init__(
        self, encoder: RecipeEncoder, recipes: list[Recipe], vocabulary: dict[str, int], vectors: list[np.ndarray], chunk: int = 2048
    ):
        n = len(recipes)
        self.index = np.zeros((n, encoder.n_tokens), dtype=np.int64)
        self.prefix = np.zeros((n, encoder.n_tokens, TOKEN_PREFIX), dtype=np.float32)
        self.mask = np.zeros((n, encoder.n_tokens), dtype=bool)
        self.conditions = np.zeros((n, 4), dtype=np.float32)
        self.size_nm = np.full(n, np.nan)
        self.n_particles = np.full(n, -1, dtype=np.int64)
        self.shape_index = np.full(n, -1, dtype=np.int64)
        self.success = np.full(n, -1, dtype=np.int8)
        self.neighbours = np.zeros((n, 0, 0), dtype=np.float32)  # retrieval tokens, set by the caller
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
            for i, j in zip(*np.nonzero(enc.mask)):
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
    for name in _FIELDS:
        setattr(subset, name, getattr(copies, name)[chosen])
    return subset


class _Batches:
    """Shuffled mini-batches over several :class:`_Compact` sets, as torch tensors.

    Rows of similar token count share a batch (random within a count, batches in random
    order) and each batch keeps only its longest row's tokens: recipes hold ~6 of the 14
    token slots, so this halves the encoder's work without changing any row's input.
    """

    def __init__(self, sets, batch_size, rng, device, descriptor_matrix):
        self.fields = {name: np.concatenate([getattr(s, name) for s in sets]) for name in _FIELDS}
        n_tokens = self.fields["mask"].sum(axis=1)
        by_length = np.lexsort((rng.random(len(n_tokens)), n_tokens))
        batches = [by_length[start : start + batch_size] for start in range(0, len(by_length), batch_size)]
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
                "neighbours": torch.from_numpy(f["neighbours"][rows]).to(dev) if f["neighbours"].shape[1] else None,
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


def run_stage(model, net, stage, n_epochs, lr, max_size, epoch_sets, validation, descriptor_matrix, device, rng, progress, monitor) -> None:
    import torch

    lr = scaled_lr(lr, model.batch_size, model.lr_scaling)
    fused = bool(model.fused_optimizer) and device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=model.weight_decay, fused=fused or None)
    n_rows = sum(len(s) for s in epoch_sets(np.random.default_rng(0)))
    steps_per_epoch = max(1, math.ceil(n_rows / model.batch_size))
    total = steps_per_epoch * n_epochs
    if model.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total + n_epochs, pct_start=0.25)
    else:
        warmup = max(1, int(0.05 * total))

        def lr_at(step):
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))) * 0.95 + 0.05

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    bf16 = model.precision == "bf16" or (model.precision == "auto" and native_bf16(device))
    ema = None
    if model.ema_decay is not None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(model.ema_decay), use_buffers=True)
    scored = ema.module if ema is not None else net
    huber = torch.nn.HuberLoss(delta=1.0, reduction="none")
    best = (math.inf, -1, None)
    for epoch in range(n_epochs):
        net.train()
        batches = _Batches(epoch_sets(rng), model.batch_size, rng, device, descriptor_matrix)
        totals = np.zeros(3)
        seen = 0
        for b in batches:
            drop = neighbour_dropout(b["neighbours"], getattr(model, "retrieval_dropout", 0.0))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                outputs = net(b["prefix"], b["descriptors"], b["mask"], b["conditions"], b["neighbours"], drop)
            size_out, shape_out, success_out = (o.float() for o in outputs)
            loss_size = size_loss(model, huber, size_out, b, max_size)
            loss_shape = _masked_ce(shape_out, b["shape"])
            loss_success = _masked_bce(success_out, b["success"]) if model.has_success_ else size_out.sum() * 0
            loss = loss_size + model.shape_weight * loss_shape + model.success_weight * loss_success
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
        record = {"epoch": epoch, "size_loss": totals[0] / seen, "shape_loss": totals[1] / seen, "success_loss": totals[2] / seen}
        if validation is not None:
            pred = model._predict_compact(scored, validation, descriptor_matrix, device)["size_nm"]
            record["val_MAE"] = float(np.mean(np.abs(pred - validation.size_nm)))
            if record["val_MAE"] < best[0]:
                best = (record["val_MAE"], epoch, copy.deepcopy(scored.state_dict()))
        monitored, eval_every = monitor
        if monitored is not None and ((epoch + 1) % eval_every == 0 or epoch == n_epochs - 1):
            pred = model._predict_compact(scored, monitored, descriptor_matrix, device)["size_nm"]
            model.eval_history_.append(
                {"stage": stage, "epoch": epoch, "MAE": float(np.mean(np.abs(pred - monitored.size_nm))), "size_nm": pred.tolist()}
            )
        model.history_[stage].append(record)
        logger.info("%s epoch %d/%d: %s", stage, epoch + 1, n_epochs, ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch"))
        if progress is not None:
            progress(stage, epoch + 1, n_epochs, record)
    if best[2] is not None:
        net.load_state_dict(best[2])
        model.best_epoch_[stage] = best[1]
    else:
        if ema is not None:
            net.load_state_dict(ema.module.state_dict())
        model.best_epoch_[stage] = n_epochs - 1


def neighbour_dropout(neighbours, p: float):
    """(B, k) bool mask of retrieval tokens hidden in one training batch (None: none hidden).

    Each token is hidden with probability ``p``; a row that would lose all keeps one at random,
    so the network learns to use the second and later neighbours, not only the nearest.
    """
    import torch

    if neighbours is None or not p:
        return None
    batch, k = neighbours.shape[:2]
    drop = torch.rand(batch, k, device=neighbours.device) < p
    lost = drop.all(dim=1)
    if bool(lost.any()):
        keep = torch.randint(0, k, (int(lost.sum()),), device=neighbours.device)
        drop[torch.nonzero(lost).squeeze(1), keep] = False
    return drop


def size_loss(model, huber, size_out, b, max_size):
    import torch

    size_nm = b["size"]
    known = torch.isfinite(size_nm) & (size_nm > 0)
    if max_size is not None:
        known &= size_nm <= max_size
    if not bool(known.any()):
        return size_out.sum() * 0
    if model.target_scale == "log":
        target = (torch.log(size_nm.clamp(min=1e-6)) - model.target_mean_) / model.target_std_
    else:
        target = (size_nm - model.target_mean_) / model.target_std_
    loss = huber(size_out, torch.where(known, target, torch.zeros_like(target)))
    keep = known
    if model.tolerance is not None:
        pred_nm = model._size_nm(size_out.detach())
        keep = keep & tolerant_size_mask(pred_nm, size_nm, b["n_particles"], tolerance=model.tolerance)
    keep = keep.float()
    return (loss * keep).sum() / known.float().sum().clamp(min=1.0)


# ------------------------------------------------------------------ predict
