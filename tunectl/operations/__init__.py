"""What the commands do, one operation a module, between the CLI and everything below.

* `session`: what the operations share — the loaded configuration, the state backend
  (`tunectl.states.backend`), the providers it uses and the model store;
* `refresh`: poll running tasks, record what changed outside tunectl (drift);
* `plan`: the plan of experiment-level changes, with what apply would run and cost;
* `apply`: carry out a plan and run the trials (also `destroy`, a plan to destroy);
* `destroy`: stop one experiment's tasks, delete its models, forget it;
* `warm`: the complete trials a new generation starts with (`warm_start`);
* `preview`: `plan --preview`, the next parameter sets each sampler proposes;
* `outputs`: `experiment.NAME.*` as outputs see them, and the outputs' values;
* `study`: an experiment's trials as a real Optuna study (`export`, `dashboard`), and
  `report`: Optuna's plots drawn on it (docs/results.md);
* `events`: what an operation reports while it runs, for `tunectl.views` to render.

An operation takes a `Session`, returns a result and emits events; it prints nothing.
"""
