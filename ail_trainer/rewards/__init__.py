"""Built-in non-differentiable objectives, all maximized, with TRL's GRPO reward calling convention."""

from .base import Reward, check_reward_output, completion_texts
from .length import Length
from .lexical import HDD, MATTR, MTLD, hdd_score, mattr_score, mtld_score, words
from .registry import REWARDS, resolve_reward, resolve_rewards
from .toxicity import LowToxicity, Toxicity, load_detoxify

__all__ = [
    "HDD", "MATTR", "MTLD", "REWARDS", "Length", "LowToxicity", "Reward", "Toxicity", "check_reward_output",
    "completion_texts", "hdd_score", "load_detoxify", "mattr_score", "mtld_score", "resolve_reward",
    "resolve_rewards", "words",
]
