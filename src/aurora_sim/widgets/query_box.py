"""Notebook 08's "Query Editor" stand-in: SQL in, a table (or the error's code and message) out.

``run_query`` is the plain function behind the Run button (tests call it directly); ``query_box`` wires it to a
``Textarea``, a ``Button`` and an ``Output``. The box starts a local Data API endpoint of its own and keeps it
running for as long as the box lives, so a later cell that stops its own endpoint cannot leave the box answering
``EndpointConnectionError``; ``box.close()`` stops it.

Example:
    >>> box = query_box()
    >>> box.endpoint.gate.status(), box.editor.value
    ('available', 'SELECT * FROM Customer')
    >>> box.close()
"""

from __future__ import annotations

import contextlib
import html
import weakref

import ipywidgets as widgets
import pandas as pd

# boto3, botocore and the Data API server are imported where a box is made or run: every notebook imports
# aurora_sim.widgets, and only notebook 08 opens a query box (they cost about 0.25 s per kernel).

DEFAULT_SQL = "SELECT * FROM Customer"


def run_query(client: object, endpoint: object, sql_text: str) -> pd.DataFrame | str:
    """Run ``sql_text`` through ``ExecuteStatement``: the result as a table, or ``"<Code>: <message>"``."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ..data_api.client import records_frame

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


class QueryBox(widgets.VBox):
    """The query editor's widgets, and the endpoint it owns: ``run(sql)`` presses Run, ``close()`` stops both."""

    def __init__(self, children: list[widgets.Widget], endpoint: object, running: contextlib.ExitStack) -> None:
        super().__init__(children)
        self.endpoint = endpoint
        self._stop = weakref.finalize(self, running.close)  # at close(), or when Python exits
        import boto3
        from botocore.config import Config

        self._client = boto3.client("rds-data", config=Config(retries={"max_attempts": 1}), **endpoint.client_kwargs())

    @property
    def editor(self) -> widgets.Textarea:
        return self.children[1]

    @property
    def output(self) -> widgets.Output:
        return self.children[3]

    def run(self, sql_text: str | None = None) -> pd.DataFrame | str:
        """Run ``sql_text`` (default: the editor's text), show the answer in the box and return it."""
        if sql_text is not None:
            self.editor.value = sql_text
        result = run_query(self._client, self.endpoint, self.editor.value)
        self.output.clear_output()
        with self.output:
            from IPython.display import HTML, display

            display(HTML(f"<pre>{html.escape(result)}</pre>") if isinstance(result, str) else result)
        return result

    def close(self) -> None:
        """Stop the box's endpoint, then close its widgets."""
        self._stop()
        super().close()


def query_box(**serve_options: object) -> QueryBox:
    """A compact query editor with a local Data API endpoint of its own (``data_api.serve(**serve_options)``;
    by default a v1 endpoint that never pauses), running until the box is closed or Python exits."""
    from ..data_api import serve

    with contextlib.ExitStack() as starting:  # if building the widgets fails, the endpoint stops again
        endpoint = starting.enter_context(serve(**{"flavour": "v1", "auto_pause_s": None, **serve_options}))
        editor = widgets.Textarea(value=DEFAULT_SQL, description="SQL", rows=4, layout=widgets.Layout(width="640px"))
        button = widgets.Button(description="Run", button_style="primary", icon="play")
        output = widgets.Output(layout=widgets.Layout(max_height="360px", overflow="auto"))
        title = widgets.HTML(f"<b>Query editor</b> — {html.escape(endpoint.url)}, database "
                             f"<code>{html.escape(endpoint.database)}</code>")
        box = QueryBox([title, editor, button, output], endpoint, starting.pop_all())
    button.on_click(lambda _: box.run())
    return box
