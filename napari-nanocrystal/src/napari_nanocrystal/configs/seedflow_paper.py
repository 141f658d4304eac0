# The paper's training recipe (Gu et al., ACS Nano 2025): cellpose-width SeedFlowNet,
# 512x512 crops, SGD lr 0.2 / momentum 0.9 / wd 1e-5, batch 8, 10-epoch linear warm-up,
# 100 epochs on labelled + weak data, then 200 epochs on the labelled data.
# A GPU recipe: on 2 CPU cores one iteration takes minutes (see seedflow_cpu_small.py).
_base_ = [
    "./_base_/default_runtime.py",
    "./_base_/seedflow_model.py",
    "./_base_/seedflow_data.py",
    "./_base_/schedule_paper.py",
]
