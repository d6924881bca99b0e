"""Tasks (data sets and target maps), each a class registered in :data:`TASKS`.

Use :func:`make_task` on a spec's ``task`` block, then ``task.splits(architecture)``.
"""

# The order of registration is the order of the tasks in the spec schema, its messages and docs/spec.md.
# isort: off
from microcircuit.tasks import bars, yin_yang, teacher, mnist, cifar10  # noqa: F401  (registers the tasks)
# isort: on
from microcircuit.tasks.bars import Bars
from microcircuit.tasks.base import TASKS, Architecture, Split, Task, make_task, validate_split
from microcircuit.tasks.cifar10 import Cifar10
from microcircuit.tasks.mnist import FashionMnist, Mnist
from microcircuit.tasks.teacher import Teacher
from microcircuit.tasks.yin_yang import YinYang

__all__ = [
    "TASKS",
    "Architecture",
    "Bars",
    "Cifar10",
    "FashionMnist",
    "Mnist",
    "Split",
    "Task",
    "Teacher",
    "YinYang",
    "make_task",
    "validate_split",
]
