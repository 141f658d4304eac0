# A schedule that fits ~90 min on 2 CPU cores with the half-width net on 224x224 crops.
# On EMPS-train (292 training images + 1 PbSe image) an epoch is 37 iterations at batch 8;
# the mixed stage with weak_fraction=0.2 has 46.  10 + 30 epochs = ~1570 iterations
# (~2.4-3.2 s each on an idle 2-core machine).  Same optimiser and warm-up shape as the paper.
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.2, momentum=0.9, weight_decay=1e-5))
lr_warmup = dict(type="LinearLR", start_factor=0.01)
lr_decay = dict(type="CosineAnnealingLR", eta_min_ratio=0.01)
stages = dict(
    pretrain=dict(data="mixed", max_epochs=10, warmup=1, val_interval=None),
    finetune=dict(data="labelled", max_epochs=30, warmup=1, val_interval=None),
)
