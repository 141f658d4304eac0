# Optimisation of Gu et al. (ACS Nano 2025): SGD lr 0.2, momentum 0.9, weight decay 1e-5,
# batch 8, linear warm-up over 10 epochs; 100 epochs on mixed labelled + weak data, then
# 200 epochs of fine-tuning on the labelled data.
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.2, momentum=0.9, weight_decay=1e-5))

# each stage: linear warm-up from start_factor·lr over `warmup`, then lr_decay to the end
lr_warmup = dict(type="LinearLR", start_factor=0.01)
lr_decay = dict(type="CosineAnnealingLR", eta_min_ratio=0.01)

# stage name -> data ('mixed' | 'labelled'), length (max_epochs or max_iters), warm-up and
# validation interval in the same unit (val_interval=None: validate at the end only), and
# optionally optim_wrapper=dict(...) or model=dict(...) merged into the global one for that stage
# only (e.g. dict(optimizer=dict(lr=0.05)), or dict(teacher="default") to distil the shipped model;
# not model.net), train_pipeline=[...] replacing the global one, weak_dataset=dict(...)
stages = dict(
    pretrain=dict(data="mixed", max_epochs=100, warmup=10, val_interval=None),
    finetune=dict(data="labelled", max_epochs=200, warmup=10, val_interval=50),
)
