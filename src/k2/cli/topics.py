"""``k2 topics``: K2's Kafka topics on whatever cluster the settings name."""

from __future__ import annotations

import click

from k2.cli.context import K2Group, settings_of


@click.group(cls=K2Group)
def topics() -> None:
    """List, create and describe K2's Kafka topics."""


@topics.command("list")
@click.pass_context
def topics_list(ctx: click.Context) -> None:
    """List the topics on the cluster (internal topics hidden)."""
    from k2.transport.topics import TopicAdmin

    for name in TopicAdmin(settings_of(ctx).kafka_config()).names():
        click.echo(name)


@topics.command("create")
@click.pass_context
def topics_create(ctx: click.Context) -> None:
    """Create the raw, DLQ and gap topics of every configured exchange, and the book topics of
    those whose books are captured (idempotent)."""
    from k2.transport.topics import TopicAdmin, k2_topics

    settings = settings_of(ctx)
    for spec, outcome in TopicAdmin(settings.kafka_config()).ensure(
        k2_topics(settings.kafka, settings.exchanges, settings.book_exchanges)
    ):
        click.echo(f"{spec.name}: {outcome} ({spec.partitions} partitions)")


@topics.command("describe")
@click.argument("names", nargs=-1)
@click.pass_context
def topics_describe(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Partitions, replication and non-default settings of NAMES (default: K2's topics)."""
    from k2.transport.topics import TopicAdmin, k2_topics

    settings = settings_of(ctx)
    every = k2_topics(settings.kafka, settings.exchanges, settings.book_exchanges)
    wanted = list(names) or [spec.name for spec in every]
    for state in TopicAdmin(settings.kafka_config()).describe(wanted):
        conf = " ".join(f"{k}={v}" for k, v in sorted(state.config.items()))
        click.echo(
            f"{state.name}: partitions={state.partitions} replication={state.replication} {conf}"
        )
