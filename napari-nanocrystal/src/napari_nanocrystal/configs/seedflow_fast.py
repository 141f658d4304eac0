# The recipe of the shipped "fast" model (models/README.md, BENCHMARKS.md "A 4x cheaper network"):
# the default model's four stages and data (seedflow_default.py) with a network that is narrow where it
# is costly and one level deeper where it is cheap - nbase [1, 8, 16, 32, 64, 128]: the same 1.66 M
# parameters, the full-resolution levels at half the channels, ~4x less work per pixel (a 1024^2
# forward pass 0.48 s vs 2.03 s on 2 CPU cores) - then a fifth stage in which the shipped default
# model, frozen, teaches it (knowledge distillation: its flows and seed probabilities on the same
# crops, beside the usual losses). Needs the shipped default model (teacher="default").
_base_ = ["./seedflow_default.py"]
model = dict(net=dict(nbase=[1, 8, 16, 32, 64, 128]))
stages = dict(
    distill=dict(
        data="mixed",
        max_epochs=8,
        warmup=1,
        val_interval=None,
        optim_wrapper=dict(optimizer=dict(lr=0.01)),
        train_pipeline={{_base_.noisy_pipeline}},
        weak_dataset=dict(flow_targets=True),
        model=dict(teacher="default", distill_weight=1.0),
    ),
)
