"""ail-trainer: active inheritance (best-of-k on non-differentiable objectives) for the Hugging Face stack."""

from .quiet import drop_deepspeed_cpu_guess

drop_deepspeed_cpu_guess()

from .config import ActiveInheritanceConfig  # noqa: E402
from .rewards.model import RewardModel  # noqa: E402
from .teachers import Endpoint  # noqa: E402
from .trainer import ActiveInheritanceTrainer  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ActiveInheritanceConfig", "ActiveInheritanceTrainer", "Endpoint", "RewardModel", "__version__"]
