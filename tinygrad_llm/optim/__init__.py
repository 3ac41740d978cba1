"""Optimizers, gradient clipping and learning-rate schedules (PyTorch's names and formulas).

    optimizer.py     Optimizer: parameter groups, zero_grad, state_dict keyed by names
    sgd.py           GD, SGD (momentum, dampening, Nesterov, weight decay)
    adam.py          Adam (L2 weight decay, AMSGrad), AdamW (decoupled weight decay)
    rmsprop.py       RMSprop (momentum, centered, weight decay)
    adagrad.py       Adagrad (learning-rate decay, initial accumulator)
    clip.py          clip_grad_norm_, clip_grad_value_
    lr_scheduler.py  LambdaLR, StepLR, get_linear_schedule_with_warmup,
                     get_cosine_schedule_with_warmup

Every update rule is written out line by line in its file, one comment per quantity.
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .lr_scheduler import (LambdaLR, LRScheduler, StepLR, get_cosine_schedule_with_warmup,
                           get_linear_schedule_with_warmup)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import GD, SGD

__all__ = ["Adagrad", "Adam", "AdamW", "GD", "LRScheduler", "LambdaLR", "Optimizer", "RMSprop",
           "SGD", "StepLR",
           "clip_grad_norm_", "clip_grad_value_", "get_cosine_schedule_with_warmup",
           "get_linear_schedule_with_warmup", "lr_scheduler"]
