"""The model server process: TF Serving's flags, start-up, the config poll, and shutdown.

Flags keep tensorflow_model_server's names and defaults (model_servers/main.cc), so a
command line written for TF Serving runs here unchanged; the few flags that only this
server has are marked "(this server only)". Start-up follows model_servers/server.cc
BuildAndStart: parse the config (a bad file stops the start with its line and column),
load every model and wait for it, then open the gRPC port and the REST port. The
config file is then re-read every --model_config_file_poll_wait_seconds
(Server::PollFilesystemAndReloadConfig): a file that does not parse keeps the last good
config serving and is logged once; a reload the core refuses is logged once per reason.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger("model_server")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """tensorflow_model_server's flags (the subset this server honours), same names and defaults."""

    def flag(name: str, **kwargs: Any) -> None:
        parser.add_argument(f"--{name}", **kwargs)

    def bool_flag(name: str, default: bool, text: str) -> None:
        flag(
            name,
            type=_bool,
            nargs="?",
            const=True,
            default=default,
            metavar="BOOL",
            help=f"{text} (default: {str(default).lower()}; --{name} alone means true)",
        )

    flag(
        "port",
        type=int,
        default=8500,
        help="TCP port of the gRPC API; 0 disables it (default: 8500)",
    )
    flag(
        "rest_api_port",
        type=int,
        default=0,
        help="TCP port of the HTTP/REST API; 0 disables it (default: 0, as TF Serving)",
    )
    flag(
        "model_config_file",
        default="",
        help="text-format ModelServerConfig (models.config): the models, version policies and "
        "labels to serve; when set, --model_name and --model_base_path are ignored",
    )
    flag(
        "model_config_file_poll_wait_seconds",
        type=float,
        default=0.0,
        help="re-read --model_config_file every this many seconds; 0 reads it once (default: 0)",
    )
    flag("model_name", default="default", help="name of the model without a config file")
    flag("model_base_path", default="", help="base path of the model without a config file")
    flag(
        "file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="look for new or removed version directories every this many seconds (default: 1)",
    )
    bool_flag("enable_batching", False, "batch concurrent requests per model version and signature")
    flag(
        "batching_parameters_file",
        default="",
        help="text-format BatchingParameters (max_batch_size, batch_timeout_micros, "
        "max_enqueued_batches, num_batch_threads, allowed_batch_sizes, "
        "pad_variable_length_inputs); needs --enable_batching",
    )
    bool_flag(
        "enable_per_model_batching_parameters",
        False,
        "with --enable_batching: each model version's batching_params.pbtxt (beside its "
        "saved_model.pb) sets its batching, a version without one is not batched, and only "
        "num_batch_threads is taken from --batching_parameters_file",
    )
    bool_flag(
        "allow_version_labels_for_unavailable_models",
        False,
        "let a NEW label point at a version that is not yet available (moving a label "
        "that is in use still needs its target AVAILABLE)",
    )
    flag(
        "monitoring_config_file",
        default="",
        help="text-format MonitoringConfig; prometheus_config { enable: true path: ... } serves "
        "Prometheus metrics on the REST port",
    )
    bool_flag(
        "enable_model_warmup",
        True,
        "replay assets.extra/tf_serving_warmup_requests before a version is AVAILABLE",
    )
    flag(
        "num_request_iterations_for_warmup",
        type=int,
        default=1,
        help="how many times each warm-up record is replayed (default: 1)",
    )
    bool_flag(
        "enable_serialization_as_tensor_content",
        False,
        "answer numeric outputs as tensor_content instead of the typed value fields",
    )
    flag(
        "grpc_max_threads",
        type=int,
        default=0,
        help="threads serving gRPC calls; 0 picks 4 per CPU (default: 0)",
    )
    flag(
        "model_base_path_rewrite",
        default="",
        metavar="FROM=TO",
        help="(this server only) read base paths that start with FROM under TO instead, so "
        "the models.config written for the TF Serving container (base_path /models/...) "
        "serves the local repository: --model_base_path_rewrite=/models=$PWD/serving/models",
    )
    flag(
        "host",
        default="0.0.0.0",
        help="(this server only) interface to listen on; TF Serving always listens on every "
        "interface (default: 0.0.0.0)",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkative model-server",
        description="A model server that speaks TensorFlow Serving's gRPC and REST protocols over "
        "SavedModels, with TF Serving's own flags and config files. See docs/model-server.md.",
    )
    return add_flags(parser)


class ModelServer:
    """A running server: the core, the gRPC and REST front ends and the config poll."""

    def __init__(self, flags: argparse.Namespace) -> None:
        self.flags = flags
        self.core: Any = None
        self._grpc: Any = None
        self._rest: Any = None
        self._rest_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._poll_thread: threading.Thread | None = None
        self._last_poll_error: str | None = None

    def _read_config(self) -> Any:
        from model_server import config as cfg

        if self.flags.model_config_file:
            config = cfg.read_config(Path(self.flags.model_config_file))
            if self.flags.model_base_path_rewrite:
                cfg.rewrite_base_paths(config, self.flags.model_base_path_rewrite)
            return config
        if not self.flags.model_base_path:
            raise SystemExit(
                "error: both --model_base_path and --model_config_file are empty; give one"
            )
        return cfg.single_model_config(self.flags.model_name, self.flags.model_base_path)

    def start(self) -> None:
        """Load the models, then open the ports. Raises ConfigError or ServingError."""
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        from model_server.batching import BatchingOptions, BatchScheduler
        from model_server.core import CoreOptions, ServerCore
        from model_server.grpc_api import ModelService, PredictionService
        from model_server.metrics import Metrics
        from model_server.protos import MonitoringConfig, parse_text

        flags = self.flags
        config = self._read_config()
        scheduler = None
        if flags.enable_batching:
            options = (
                BatchingOptions.from_file(Path(flags.batching_parameters_file))
                if flags.batching_parameters_file
                else BatchingOptions()
            )
            scheduler = BatchScheduler(options)
        elif flags.batching_parameters_file:
            raise SystemExit(
                "error: --batching_parameters_file is set without setting --enable_batching"
            )
        monitoring_path = None
        if flags.monitoring_config_file:
            text = Path(flags.monitoring_config_file).read_text(encoding="utf-8")
            monitoring: Any = parse_text(MonitoringConfig, text, flags.monitoring_config_file)
            if monitoring.prometheus_config.enable:
                monitoring_path = (
                    monitoring.prometheus_config.path or "/monitoring/prometheus/metrics"
                )
        self.metrics = Metrics()
        self.core = ServerCore(
            CoreOptions(
                allow_version_labels_for_unavailable_models=(
                    flags.allow_version_labels_for_unavailable_models
                ),
                file_system_poll_wait_seconds=flags.file_system_poll_wait_seconds,
                enable_model_warmup=flags.enable_model_warmup,
                num_request_iterations_for_warmup=flags.num_request_iterations_for_warmup,
                # server.cc sets it only inside `if (enable_batching)`: ignored without batching
                enable_per_model_batching_params=(
                    flags.enable_batching and flags.enable_per_model_batching_parameters
                ),
            ),
            scheduler,
        )
        self.core.events.loaded.append(self.metrics.loaded)
        self.core.events.warmup_replayed.append(self.metrics.warmup_replayed)
        try:
            self.core.reload_config(config)
        except Exception:
            self.core.stop()
            raise

        if flags.port:
            threads = flags.grpc_max_threads or 4 * (os.cpu_count() or 1)
            server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
                options=[
                    ("grpc.max_receive_message_length", -1),
                    ("grpc.max_send_message_length", -1),
                ],
            )
            prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
                PredictionService(
                    self.core,
                    self.metrics,
                    tensor_content=flags.enable_serialization_as_tensor_content,
                ),
                server,
            )
            model_service_pb2_grpc.add_ModelServiceServicer_to_server(
                ModelService(self.core), server
            )
            if not server.add_insecure_port(f"{flags.host}:{flags.port}"):
                raise SystemExit(f"error: cannot listen on {flags.host}:{flags.port}")
            server.start()
            self._grpc = server
            log.info("Running gRPC ModelServer at %s:%d ...", flags.host, flags.port)
        if flags.rest_api_port:
            self._start_rest(monitoring_path)
            log.info("Exporting HTTP/REST API at:%s:%d ...", flags.host, flags.rest_api_port)
        if flags.model_config_file and flags.model_config_file_poll_wait_seconds > 0:
            self._poll_thread = threading.Thread(
                target=self._poll_config, name="config-poll", daemon=True
            )
            self._poll_thread.start()

    def _start_rest(self, monitoring_path: str | None) -> None:
        import uvicorn

        from model_server.rest_api import rest_app

        app = rest_app(self.core, self.metrics, monitoring_path)
        config = uvicorn.Config(
            app,
            host=self.flags.host,
            port=self.flags.rest_api_port,
            log_config=None,
            access_log=False,
            server_header=False,
            lifespan="off",
        )
        self._rest = uvicorn.Server(config)
        self._rest_thread = threading.Thread(target=self._rest.run, name="rest", daemon=True)
        self._rest_thread.start()
        while not self._rest.started:
            if not self._rest_thread.is_alive():
                raise SystemExit(f"error: cannot listen on port {self.flags.rest_api_port}")
            self._stop.wait(0.05)

    def _poll_config(self) -> None:
        from model_server.config import ConfigError
        from model_server.errors import ServingError

        wait = self.flags.model_config_file_poll_wait_seconds
        while not self._stop.wait(wait):
            try:
                config = self._read_config()
                self.core.reload_config(config)
            except (ConfigError, ServingError) as exc:
                message = (
                    f"Failed to read ModelServerConfig file: {exc}"
                    if isinstance(exc, ConfigError)
                    else f"PollFilesystemAndReloadConfig failed to ReloadConfig: {exc.message}"
                )
                if message != self._last_poll_error:  # once per reason, not once per poll
                    log.error("%s", message)
                    self._last_poll_error = message
                continue
            except Exception:
                log.exception("config poll failed")
                continue
            if self._last_poll_error is not None:
                log.info("models.config accepted again")
                self._last_poll_error = None

    def stop(self) -> None:
        self._stop.set()
        if self._rest is not None:
            self._rest.should_exit = True
            if self._rest_thread is not None:
                self._rest_thread.join(timeout=10)
        if self._grpc is not None:
            self._grpc.stop(grace=2).wait()
        if self.core is not None:
            self.core.stop()
            if self.core.scheduler is not None:
                self.core.scheduler.close(timeout=10)  # a stuck batch must not block the exit

    def wait(self) -> None:
        self._stop.wait()


def run(flags: argparse.Namespace) -> int:
    from model_server.config import ConfigError
    from model_server.errors import ServingError

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s] %(message)s",
        stream=sys.stderr,
    )
    server = ModelServer(flags)

    def stop(signum: int, frame: FrameType | None) -> None:
        server._stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.start()
    except ConfigError as exc:
        log.error("%s", exc)
        return 1
    except ServingError as exc:
        log.error("%s", exc)
        return 1
    log.info("model server ready")
    server.wait()
    log.info("stopping")
    server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
