# A tiny HRNet Cascade R-CNN with NWD on ~128 px images, 2 iterations: for tests and CPU smoke runs only.
_base_ = ["./cascade_rcnn_hrnet_nwd.py"]

nwd = dict(type="NWDOverlaps2D", constant=12.8)
channels = 32


def _stage(stds):
    return dict(
        type="Shared2FCBBoxHead",
        in_channels=channels,
        fc_out_channels=64,
        roi_feat_size=7,
        num_classes=1,
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0, 0.0, 0.0, 0.0], target_stds=stds),
        reg_class_agnostic=True,
        loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type="SmoothL1Loss", beta=1.0, loss_weight=1.0),
    )


def _rcnn(threshold):
    return dict(
        assigner=dict(
            type="MaxIoUAssigner",
            pos_iou_thr=threshold,
            neg_iou_thr=threshold,
            min_pos_iou=threshold,
            match_low_quality=False,
            ignore_iof_thr=-1,
            iou_calculator=nwd,
        ),
        sampler=dict(type="RandomSampler", num=64, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
        pos_weight=-1,
        debug=False,
    )


model = dict(
    backbone=dict(
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block="BOTTLENECK", num_blocks=(1,), num_channels=(16,)),
            stage2=dict(num_modules=1, num_branches=2, block="BASIC", num_blocks=(1, 1), num_channels=(8, 16)),
            stage3=dict(num_modules=1, num_branches=3, block="BASIC", num_blocks=(1, 1, 1), num_channels=(8, 16, 32)),
            stage4=dict(num_modules=1, num_branches=4, block="BASIC", num_blocks=(1, 1, 1, 1), num_channels=(8, 16, 32, 64)),
        )
    ),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=[_stage([0.1, 0.1, 0.2, 0.2]), _stage([0.05, 0.05, 0.1, 0.1]), _stage([0.033, 0.033, 0.067, 0.067])],
    ),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)), rpn_proposal=dict(nms_pre=200, max_per_img=100), rcnn=[_rcnn(0.5), _rcnn(0.6), _rcnn(0.7)]
    ),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=100)),
)

train_pipeline = [
    dict(type="LoadTEMImage"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Resize", scale=(128, 128), keep_ratio=True),
    dict(type="RandomFlip", prob=0.5, direction="horizontal"),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadTEMImage"),
    dict(type="Resize", scale=(128, 128), keep_ratio=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(filter_cfg=dict(min_size=8), pipeline=train_pipeline)
)
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

train_cfg = dict(max_iters=2, val_interval=2)
param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
log_processor = dict(window_size=1)
