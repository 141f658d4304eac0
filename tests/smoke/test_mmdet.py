"""mmdet: build a small Cascade R-CNN from a config dict and run one prediction."""

from __future__ import annotations

import pytest
import torch


def _bbox_head(stds):
    return dict(
        type="Shared2FCBBoxHead",
        in_channels=64,
        fc_out_channels=128,
        roi_feat_size=7,
        num_classes=1,
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=stds),
        reg_class_agnostic=True,
        loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type="SmoothL1Loss", beta=1.0, loss_weight=1.0),
    )


CASCADE_RCNN_R18 = dict(
    type="CascadeRCNN",
    data_preprocessor=dict(
        type="DetDataPreprocessor",
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
    ),
    backbone=dict(
        type="ResNet",
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type="BN", requires_grad=True),
        norm_eval=True,
        style="pytorch",
        init_cfg=None,
    ),
    neck=dict(type="FPN", in_channels=[64, 128, 256, 512], out_channels=64, num_outs=5),
    rpn_head=dict(
        type="RPNHead",
        in_channels=64,
        feat_channels=64,
        anchor_generator=dict(type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
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
            out_channels=64,
            featmap_strides=[4, 8, 16, 32],
        ),
        bbox_head=[
            _bbox_head([0.1, 0.1, 0.2, 0.2]),
            _bbox_head([0.05, 0.05, 0.1, 0.1]),
            _bbox_head([0.033, 0.033, 0.067, 0.067]),
        ],
    ),
    test_cfg=dict(
        rpn=dict(nms_pre=200, max_per_img=100, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.0, nms=dict(type="nms", iou_threshold=0.5), max_per_img=20),
    ),
)


@pytest.mark.smoke
def test_cascade_rcnn_r18_predicts_boxes_on_cpu():
    """An untrained Cascade R-CNN (ResNet-18, nothing downloaded) returns (k, 4) boxes inside the image."""
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.config import ConfigDict
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(CASCADE_RCNN_R18))
    model.init_weights()
    model.eval()

    size = 128
    image = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0)))
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), False)
        results = model(**data, mode="predict")

    assert len(results) == 1
    pred = results[0].pred_instances
    k = len(pred)
    assert k > 0
    assert pred.bboxes.shape == (k, 4)
    assert pred.scores.shape == (k,)
    assert pred.labels.shape == (k,)
    assert torch.all(pred.labels == 0)
    assert torch.all(pred.bboxes >= 0) and torch.all(pred.bboxes <= size)
