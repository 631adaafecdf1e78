"""The README.md of an exported project: what is in the folder and the commands to run it."""
from __future__ import annotations

from engine.spec import Spec


def plain_name(name: str) -> str:
    """The design's name, safe inside generated docstrings and Markdown headings."""
    return " ".join(name.replace('"', "'").replace("\\", "/").split()) or "untitled"


def project_readme(spec: Spec, info) -> str:
    t = spec.training
    sk = "scikit-learn (for its dataset), " if spec.dataset.kind in ("iris", "digits") else ""
    return f"""# {plain_name(spec.name)} - a PyTorch project exported from Neural Playground

Trains the design on its own: it needs only Python 3.10+, PyTorch and numpy ({sk}nothing of Neural
Playground). Dataset: `{spec.dataset.kind}` ({info.task}); {t.epochs} epochs, batch {t.batch_size},
optimiser {t.optimizer} (lr {t.lr:g}), loss {t.loss}, seed {t.seed}.

| file | what |
|---|---|
| `model.py` | the network as an `nn.Module`; layer names are the design's layer ids |
| `data.py` | the dataset, made exactly as the playground makes it (`python data.py` shows the shapes) |
| `train.py` | the training loop: one process, or many with `torchrun` |
| `snapshot.pt` | the weights (and optimiser state) as they were in the playground at export |
| `config.json` | the design itself (open it in Neural Playground) |

## One machine (CPU, or its GPU)

    pip install -r requirements.txt
    python train.py                    # fresh weights from the design's seed
    python train.py --resume snapshot.pt   # go on from the playground's trained state
    python train.py --epochs 200       # more epochs than the design says

A checkpoint is written after every epoch to `checkpoints/last.pt`; run the same command again
after a crash or Ctrl-C and training resumes after the last finished epoch. Delete `checkpoints/`
to start over. Load trained weights elsewhere with

    import torch
    from model import Net
    net = Net()
    net.load_state_dict(torch.load("checkpoints/last.pt", weights_only=True)["model"])

## One GPU

    python train.py --device cuda

(`--device auto`, the default, already takes the GPU when PyTorch sees one: install the CUDA
build of PyTorch from https://pytorch.org.)

## Several GPUs or processes on one machine

    torchrun --standalone --nproc-per-node=4 train.py

Each process trains on its share of every epoch (DistributedDataParallel with a
DistributedSampler; NCCL between GPUs, gloo on CPUs), so a step sees 4 x {t.batch_size} samples -
raise the learning rate or lower the batch size in `train.py` if you want the single-process
dynamics. Only process 0 writes the checkpoint.

## Several machines (nodes)

Start the same command on every node (here 2 nodes with 4 GPUs each); HOST is the address of
one of them and PORT a free port on it (29500 is usual):

    torchrun --nnodes=2 --nproc-per-node=4 --rdzv-backend c10d --rdzv-endpoint HOST:PORT \\
             --rdzv-id {plain_name(spec.name).replace(" ", "-").lower()} --max-restarts 3 \\
             train.py --checkpoint-dir /shared/{plain_name(spec.name).replace(" ", "_").lower()}

`--checkpoint-dir` must be a folder every node sees (a shared file system): after a failure
torchrun restarts all processes (`--max-restarts`) and each resumes from the last checkpoint.
The project folder (with `data.py`'s files) must be on every node.
"""
