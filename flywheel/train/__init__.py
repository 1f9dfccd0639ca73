"""Students: distil a workload's teacher into small models (scratch Llama, Hub causal LMs, encoders).

Entry points: `train_candidate` / `train_workload` (train, post-process, save, register) and
`load_student` (a saved artifact as a `Predictor`). Heavy libraries load inside the functions.
"""

from flywheel.train.candidate import TrainedCandidate, train_candidate, train_workload
from flywheel.train.student import load_student

__all__ = ["TrainedCandidate", "load_student", "train_candidate", "train_workload"]
