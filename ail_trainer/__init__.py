"""ail-trainer: active inheritance (best-of-k on non-differentiable objectives) for the Hugging Face stack."""

from .config import ActiveInheritanceConfig
from .rewards.model import RewardModel
from .teachers import Endpoint
from .trainer import ActiveInheritanceTrainer

__version__ = "0.1.0"
__all__ = ["ActiveInheritanceConfig", "ActiveInheritanceTrainer", "Endpoint", "RewardModel", "__version__"]
