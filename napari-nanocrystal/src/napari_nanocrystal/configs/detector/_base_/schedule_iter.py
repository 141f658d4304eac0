# Iteration-based schedule. The authors trained 12 epochs from ImageNet weights; from scratch more steps are
# needed: 12k iterations of 2 images (~80 epochs of the 292 EMPS training images), SGD with linear warm-up,
# steps at 8k and 11k, gradient clipping for stability without pretraining.
train_cfg = dict(type="IterBasedTrainLoop", max_iters=12000, val_interval=12000)
optim_wrapper = dict(
    type="OptimWrapper", optimizer=dict(type="SGD", lr=0.005, momentum=0.9, weight_decay=0.0001), clip_grad=dict(max_norm=35, norm_type=2)
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type="MultiStepLR", by_epoch=False, begin=0, end=12000, milestones=[8000, 11000], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=2)
