"""Evolution Strategies on CartPole, in the style of OpenAI's evolution-strategies-starter:
a shared noise table in a RawArray, workers set up by a Pool initializer, mirrored
sampling, centered ranks and Adam.

    python examples/es_cartpole.py
    python -m transparent_mp examples/es_cartpole.py
"""

import ctypes
import multiprocessing as mp

import gymnasium as gym
import numpy as np

NOISE_SIZE = 5_000_000
POPULATION = 16  # mirrored pairs per generation
GENERATIONS = 8
SIGMA = 0.05

noise = None  # set in each worker by init_worker
env = None


class SharedNoiseTable:
    def __init__(self, seed: int = 123) -> None:
        self._shared = mp.RawArray(ctypes.c_float, NOISE_SIZE)
        self.noise = np.ctypeslib.as_array(self._shared)
        self.noise[:] = np.random.RandomState(seed).randn(NOISE_SIZE).astype(np.float32)

    def get(self, index: int, dim: int) -> np.ndarray:
        return self.noise[index:index + dim]


def init_worker(shared_mem) -> None:
    global noise, env
    noise = np.ctypeslib.as_array(shared_mem)
    env = gym.make("CartPole-v1")


def rollout(theta: np.ndarray, episode_seed: int) -> float:
    obs, _ = env.reset(seed=episode_seed)
    weights = theta.reshape(2, 4)
    total = 0.0
    for _ in range(500):
        obs, reward, terminated, truncated, _ = env.step(int(np.argmax(weights @ obs)))
        total += reward
        if terminated or truncated:
            break
    return total


def evaluate(task):
    theta, index, episode_seed = task
    eps = noise[index:index + theta.size]
    return (rollout(theta + SIGMA * eps, episode_seed),
            rollout(theta - SIGMA * eps, episode_seed))


def centered_ranks(x: np.ndarray) -> np.ndarray:
    ranks = np.empty(x.size, dtype=np.float32)
    ranks[x.ravel().argsort()] = np.arange(x.size, dtype=np.float32)
    return (ranks / (x.size - 1) - 0.5).reshape(x.shape)


class Adam:
    def __init__(self, dim: int, lr: float = 0.05) -> None:
        self.m, self.v, self.t, self.lr = np.zeros(dim), np.zeros(dim), 0, lr

    def step(self, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad * grad
        m_hat, v_hat = self.m / (1 - 0.9 ** self.t), self.v / (1 - 0.999 ** self.t)
        return self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


if __name__ == "__main__":
    table = SharedNoiseTable()
    theta = np.zeros(8)
    optimizer = Adam(theta.size)
    rng = np.random.RandomState(0)
    with mp.Pool(2, initializer=init_worker, initargs=(table._shared,)) as pool:
        for generation in range(GENERATIONS):
            indices = rng.randint(0, NOISE_SIZE - theta.size, size=POPULATION)
            tasks = [(theta, int(i), 1000 * generation + k) for k, i in enumerate(indices)]
            returns = np.array(pool.map(evaluate, tasks))
            ranks = centered_ranks(returns)
            weights = ranks[:, 0] - ranks[:, 1]
            eps = np.array([table.get(int(i), theta.size) for i in indices])
            grad = weights @ eps / (POPULATION * SIGMA)
            theta = theta + optimizer.step(grad)
        final = pool.map(evaluate, [(theta, 0, 99_000 + k) for k in range(4)])
    print(f"ES CartPole: theta {np.round(theta, 3).tolist()} "
          f"final mirrored returns {[(a, b) for a, b in final]}")
