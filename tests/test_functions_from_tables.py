"""functions/ is derived from the tables the capabilities register: one Event Grid trigger per
consumer, one timer trigger per timer, one queue trigger per queue job, each under its own name."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from functions.background import blueprint
from shared.composition import CAPABILITIES, CONSUMERS, QUEUE_JOBS, TIMERS, configure
from shared.kernel.configurator import Configurator
from shared.kernel.container import Container
from shared.kernel.jobs import EventConsumer, QueueJob, Subscription, Timer
from tests.indexed import indexed_functions


async def _tidy(container: Container) -> None:
    return None


async def _scan(container: Container, envelope: Any) -> None:
    return None


async def _meter(container: Container, message: str) -> None:
    return None


def test_the_function_app_indexes_one_function_per_declaration() -> None:
    functions = indexed_functions()
    types = {name: f.get_trigger().type for name, f in functions.items()}
    assert types == {
        "http_app_func": "httpTrigger",
        **{c.function_name: "eventGridTrigger" for c in CONSUMERS},
        **{t.name: "timerTrigger" for t in TIMERS},
        **{j.name: "queueTrigger" for j in QUEUE_JOBS},
    }
    assert types["webhook_fanout"] == "eventGridTrigger"  # the webhooks capability's consumer


def test_a_new_capability_gets_a_trigger_for_each_of_its_declarations() -> None:
    def scanning(config: Configurator) -> None:
        config.add_consumer(EventConsumer(Subscription("scans", "scan_on_push", ("Microsoft.ContainerRegistry."
                                                                                 "ImagePushed",)), _scan))
        config.add_timer(Timer("tidy_scans", "0 0 3 * * *", _tidy))
        config.add_queue_job(QueueJob("meter_usage", lambda prefix: f"{prefix}-usage", _meter))

    app = func.FunctionApp()
    app.register_functions(blueprint(configure((*CAPABILITIES, scanning))))
    functions = {f.get_function_name(): f for f in app.get_functions()}
    assert functions["scan_on_push"].get_trigger().type == "eventGridTrigger"
    assert functions["tidy_scans"].get_trigger().schedule == "0 0 3 * * *"
    queue = functions["meter_usage"].get_trigger()
    assert (queue.queue_name, queue.connection) == ("%REGISTRY_STORAGE_PREFIX%-usage", "RegistryStorage")
    assert {"webhook_fanout", "republish_outbox", "purge_stale_uploads", "webhook_delivery"} <= set(functions)
    assert len({f.get_user_function().__name__ for f in functions.values()}) == len(functions)
