"""Hyperparameter search with scikit-learn, written as any user of it would.

    python examples/sklearn_search.py
    python -m transparent_mp examples/sklearn_search.py
"""

from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

if __name__ == "__main__":
    X, y = load_digits(return_X_y=True)
    grid = GridSearchCV(SVC(), {"C": [0.1, 1, 10], "gamma": [1e-4, 1e-3]}, cv=3, n_jobs=-1)
    grid.fit(X, y)
    print(f"grid search: best {grid.best_params_} score {grid.best_score_:.4f}")

    Xc, yc = make_classification(n_samples=600, n_features=20, random_state=0)
    search = RandomizedSearchCV(DecisionTreeClassifier(random_state=0),
                                {"max_depth": list(range(2, 12)),
                                 "min_samples_leaf": list(range(1, 10))},
                                n_iter=12, cv=3, n_jobs=2, random_state=0)
    search.fit(Xc, yc)
    print(f"randomized search: best {search.best_params_} score {search.best_score_:.4f}")
