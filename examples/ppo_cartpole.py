"""PPO on CartPole with environments in subprocesses, as stable-baselines3 users write it.

    python examples/ppo_cartpole.py
    python -m transparent_mp examples/ppo_cartpole.py
"""

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import SubprocVecEnv

if __name__ == "__main__":
    torch.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0, vec_env_cls=SubprocVecEnv)
    model = PPO("MlpPolicy", env, n_steps=256, batch_size=256, n_epochs=4, seed=0,
                device="cpu", verbose=0)
    model.learn(total_timesteps=8192)
    mean, std = evaluate_policy(model, model.get_env(), n_eval_episodes=8, deterministic=True)
    env.close()
    print(f"PPO CartPole: mean reward {mean:.2f} +/- {std:.2f}")
