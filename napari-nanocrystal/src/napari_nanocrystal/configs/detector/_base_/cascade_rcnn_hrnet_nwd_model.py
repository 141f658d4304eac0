# Cascade R-CNN with an HRNetV2p-w32 backbone (as in the authors' detector config, preprocess/configs/
# cascade_rcnn/exp0511.py of Sharpiless/Nanocrystals-TEM-segmentation), one class ("particle"), and the
# Normalized Gaussian Wasserstein Distance (NWD, Wang et al. 2021) instead of IoU in the label assignment
# of the RPN and of all three cascade stages (TASK_UTILS 'NWDOverlaps2D'). The assigners' thresholds
# are therefore NWD values; with C = 12.8 px, NWD 0.5 / 0.6 / 0.7 means a Gaussian Wasserstein distance
# of 8.9 / 6.5 / 4.6 px. C should be about the mean particle size in the resized image (12.8 px is
# Wang et al.'s AI-TOD value; PbSe particles of the paper's TEM images are ~22 px at the 1333x800
# scale, EMPS particles ~56 px): change it with train_detector(..., nwd_constant=...).
#
# Differences from the authors' config: no ImageNet initialisation (none is downloadable here):
# Kaiming init and trainable BatchNorm statistics (norm_eval=False; frozen statistics of a model
# trained from scratch would stay at their initial values); 1 class instead of 12; up to 1000
# detections per image (dense TEM fields hold hundreds of particles; mmdet's default is 100). At test time the
# RPN keeps mmdet's 1000 proposals: enough for fields of up to ~500 particles; the three R-CNN stages cost
# ~3 s per 1000 proposals on one CPU core (benchmarks/results/weak_labels.md), so raise test_cfg.rpn.max_per_img
# only for denser fields.
nwd = dict(type="NWDOverlaps2D", constant=12.8)


def _stage(stds):
    return dict(
        type="Shared2FCBBoxHead",
        in_channels=256,
        fc_out_channels=1024,
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
        sampler=dict(type="RandomSampler", num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
        pos_weight=-1,
        debug=False,
    )


model = dict(
    type="CascadeRCNN",
    data_preprocessor=dict(
        type="DetDataPreprocessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32
    ),
    backbone=dict(
        type="HRNet",
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block="BOTTLENECK", num_blocks=(4,), num_channels=(64,)),
            stage2=dict(num_modules=1, num_branches=2, block="BASIC", num_blocks=(4, 4), num_channels=(32, 64)),
            stage3=dict(num_modules=4, num_branches=3, block="BASIC", num_blocks=(4, 4, 4), num_channels=(32, 64, 128)),
            stage4=dict(num_modules=3, num_branches=4, block="BASIC", num_blocks=(4, 4, 4, 4), num_channels=(32, 64, 128, 256)),
        ),
        norm_eval=False,
        init_cfg=None,
    ),
    neck=dict(type="HRFPN", in_channels=[32, 64, 128, 256], out_channels=256),
    rpn_head=dict(
        type="RPNHead",
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=1.0),
    ),
    roi_head=dict(
        type="CascadeRoIHead",
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor=dict(
            type="SingleRoIExtractor",
            roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32],
        ),
        bbox_head=[_stage([0.1, 0.1, 0.2, 0.2]), _stage([0.05, 0.05, 0.1, 0.1]), _stage([0.033, 0.033, 0.067, 0.067])],
    ),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type="MaxIoUAssigner",
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1,
                iou_calculator=nwd,
            ),
            sampler=dict(type="RandomSampler", num=256, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False),
            allowed_border=0,
            pos_weight=-1,
            debug=False,
        ),
        rpn_proposal=dict(nms_pre=2000, max_per_img=2000, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
        rcnn=[_rcnn(0.5), _rcnn(0.6), _rcnn(0.7)],
    ),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type="nms", iou_threshold=0.5), max_per_img=1000),
    ),
)
