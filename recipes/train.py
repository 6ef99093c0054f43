"""Active-inheritance training with TRL-style YAML recipes.

    accelerate launch recipes/train.py                                   # built-in offline default
    accelerate launch --config_file accelerate_configs/zero3.yaml recipes/train.py \
        --config recipes/lexical_diversity.yaml
"""

from ail_trainer.scripts.train import main

if __name__ == "__main__":
    main()
