"""Steps exchange small JSON pointers through the artifact store (never pickled bytes)."""


import json

import dagster as dg

from pdfgen_pipeline.defs.resources import StoresResource
from pdfgen_pipeline.stores.base import join_key

POINTERS = "_pointers"


class ArtifactPointerIOManager(dg.ConfigurableIOManager):
    """Stores each asset partition's pointer as `_pointers/<asset>/<partition>.json` in the artifact store."""

    stores: dg.ResourceDependency[StoresResource]

    def _key(self, context: dg.OutputContext | dg.InputContext) -> str:
        asset = "__".join(context.asset_key.path)
        partition = context.partition_key if context.has_partition_key else "__all__"
        return join_key(POINTERS, asset, f"{partition}.json")

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        if obj is None:
            return
        self.stores.artifacts().write_bytes(self._key(context), json.dumps(obj, ensure_ascii=False).encode(),
                                            "application/json")

    def load_input(self, context: dg.InputContext) -> dict:
        # an input context names the upstream asset and this run's partition
        return json.loads(self.stores.artifacts().read_bytes(self._key(context)))
