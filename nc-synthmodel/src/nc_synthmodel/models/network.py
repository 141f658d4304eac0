"""The synthesis transformer's network (torch is imported only when it is built)."""

from __future__ import annotations

from ..features.encoding import TOKEN_PREFIX


def build_network(
    token_dim: int,
    n_conditions: int,
    d_model: int,
    n_layers: int,
    n_heads: int,
    dim_feedforward: int,
    dropout: float,
    n_shapes: int,
    condition_tokens: bool = False,
    retrieval_width: int = 0,
    retrieval_residual: bool = False,
):
    """Build the network (torch is imported only here).

    ``condition_tokens`` appends the scaled conditions to every token's features (the
    authors' code does), so attention can weigh chemicals by temperature and time.
    ``retrieval_width`` > 0 adds retrieval tokens (:mod:`.retrieval`: nearest training recipes
    with their outcomes, ``retrieval_width`` numbers each), embedded by their own projection and
    read by the encoder beside the chemical tokens.  ``retrieval_residual`` makes the size
    output a correction to the neighbours' weighted mean outcome: a softmax over the neighbour
    tokens (weights from a linear gate on each token, starting uniform) averages their targets
    (slot 0 of a token), and the size head adds to it; ``retrieval_residual="aggregate"`` adds it to
    the last token's target instead (the aggregate token: the forest's estimate), with the size
    head's last layer starting at zero, so the network starts at that estimate.
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
            self.neighbour_embed = nn.Linear(retrieval_width, d_model) if retrieval_width else None
            self.neighbour_gate = None
            if isinstance(retrieval_residual, str) and retrieval_residual != "aggregate":
                raise ValueError(f"retrieval_residual must be False, True or 'aggregate', got {retrieval_residual!r}")
            self.from_aggregate = bool(retrieval_width) and retrieval_residual == "aggregate"
            if retrieval_width and retrieval_residual and not self.from_aggregate:
                self.neighbour_gate = nn.Linear(retrieval_width, 1)
                nn.init.zeros_(self.neighbour_gate.weight)
                nn.init.zeros_(self.neighbour_gate.bias)
            layer = nn.TransformerEncoderLayer(
                d_model, n_heads, dim_feedforward, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
            self.size_head = head(d_model + n_conditions, 1)
            self.shape_head = head(d_model + n_conditions, n_shapes)
            self.success_head = head(d_model + n_conditions, 1)
            if self.from_aggregate:  # the correction starts at zero
                nn.init.zeros_(self.size_head[-1].weight)
                nn.init.zeros_(self.size_head[-1].bias)

        def forward(self, prefix, descriptors, mask, conditions, neighbours=None, neighbour_drop=None):
            """``prefix`` (B, T, 2), ``descriptors`` (B, T, dim) raw, ``mask`` (B, T) True = real;
            ``neighbours`` (B, k, retrieval_width) when the network has retrieval tokens;
            ``neighbour_drop`` (B, k) True = a neighbour hidden (training only; at least one kept per row)."""
            desc = (descriptors - self.descriptor_mean) / self.descriptor_std
            desc = desc * mask.unsqueeze(-1)  # padding stays all-zero
            features = [prefix, desc]
            if condition_tokens:
                features.append(conditions.unsqueeze(1).expand(-1, prefix.shape[1], -1))
            x = self.embed(torch.cat(features, dim=-1))
            batch = x.shape[0]
            parts = [self.cls.expand(batch, -1, -1), x]
            pad = [torch.zeros(batch, 1, dtype=torch.bool, device=mask.device), ~mask]
            if self.neighbour_embed is not None:
                if neighbours is None:
                    raise ValueError("this network reads retrieval tokens: pass neighbours")
                parts.append(self.neighbour_embed(neighbours))
                hidden = torch.zeros(neighbours.shape[:2], dtype=torch.bool, device=mask.device)
                if neighbour_drop is not None:
                    hidden = neighbour_drop.to(torch.bool)
                pad.append(hidden)
            x = torch.cat(parts, dim=1)
            padding = torch.cat(pad, dim=1)
            h = self.encoder(x, src_key_padding_mask=padding)[:, 0]
            z = torch.cat([h, conditions], dim=1)
            size = self.size_head(z).squeeze(1)
            if self.neighbour_gate is not None:
                logits = self.neighbour_gate(neighbours).squeeze(-1).float().masked_fill(hidden, float("-inf"))
                size = size + (torch.softmax(logits, dim=1) * neighbours[:, :, 0].float()).sum(1)
            elif self.from_aggregate:
                size = size + neighbours[:, -1, 0].float()
            return size, self.shape_head(z), self.success_head(z).squeeze(1)

    return SynthesisNet()
