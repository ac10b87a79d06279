"""The mechanism the registry is assembled with, free of domain code: the protocols services take
their collaborators by (:mod:`.interfaces`), the request context (:mod:`.context`), operations
(:mod:`.operations`), route and policy declarations (:mod:`.routes`, :mod:`.policy`), the tables of
event consumers, timers and queue jobs (:mod:`.jobs`), the :class:`~.configurator.Configurator`
capabilities register with, and the :class:`~.container.Container` built once per process."""
