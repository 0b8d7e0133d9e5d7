"""Notebook 08's "Query Editor" stand-in: SQL in, a table (or the error's code and message) out.

``run_query`` is the plain function behind the Run button (tests call it directly); ``query_box`` wires it to a
``Textarea``, a ``Button`` and an ``Output``.
"""

from __future__ import annotations

import html

import boto3
import ipywidgets as widgets
import pandas as pd
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..data_api.client import records_frame

DEFAULT_SQL = "SELECT * FROM Customer"


def run_query(client: object, endpoint: object, sql_text: str) -> pd.DataFrame | str:
    """Run ``sql_text`` through ``ExecuteStatement``: the result as a table, or ``"<Code>: <message>"``."""
    try:
        response = client.execute_statement(resourceArn=endpoint.resource_arn, secretArn=endpoint.secret_arn,
                                            database=endpoint.database, sql=sql_text, includeResultMetadata=True)
    except ClientError as error:
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'ClientError')}: {details.get('Message', '')}"
    except BotoCoreError as error:  # the endpoint is gone (stopped), say: no traceback in a widget callback
        return f"{type(error).__name__}: {error}"
    frame = records_frame(response)
    if frame.empty and not len(frame.columns):
        return f"OK: {response.get('numberOfRecordsUpdated', 0)} row(s) updated"
    return frame


def query_box(endpoint: object) -> widgets.VBox:
    """A compact query editor against a running ``data_api`` endpoint (one boto3 client, no SDK retries)."""
    client = boto3.client("rds-data", config=Config(retries={"max_attempts": 1}), **endpoint.client_kwargs())
    editor = widgets.Textarea(value=DEFAULT_SQL, description="SQL", rows=4, layout=widgets.Layout(width="640px"))
    button = widgets.Button(description="Run", button_style="primary", icon="play")
    output = widgets.Output(layout=widgets.Layout(max_height="360px", overflow="auto"))

    def on_run(_: object = None) -> None:
        result = run_query(client, endpoint, editor.value)
        output.clear_output()
        with output:
            from IPython.display import HTML, display

            if isinstance(result, str):
                display(HTML(f"<pre>{html.escape(result)}</pre>"))
            else:
                display(result)

    button.on_click(on_run)
    box = widgets.VBox([widgets.HTML(f"<b>Query editor</b> — {html.escape(endpoint.url)}, database "
                                     f"<code>{html.escape(endpoint.database)}</code>"), editor, button, output])
    box.run = on_run  # lets a notebook (or test) press Run without a browser
    return box
