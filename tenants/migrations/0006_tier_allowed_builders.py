# Tiers decide which builders an event may choose (security finding H1: the event picked the builder).

import re

import django.core.validators
from django.db import migrations, models
from django.db.models import F

import tenants.models

# CodeBuild's project name rule (as in orchestrator.bootstrap, frozen here).
CODEBUILD_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$")


def allow_what_each_tier_could_run(apps, schema_editor):
    """A tier whose projects cannot be CodeBuild project names (``demo/build.sh provision``) only ever ran
    on the LOCAL builder: it keeps LOCAL (still subject to LOCAL_BUILDER_ENABLED and LOCAL_BUILD_COMMANDS);
    every other tier gets CODE_BUILD only. Every version moves on, so the sync sweep writes the new
    ``allowedBuilders`` attribute to DynamoDB."""
    Tier = apps.get_model("tenants", "Tier")
    for tier in Tier.objects.all():
        projects = [name for name in (tier.provision_project, tier.deprovision_project) if name]
        if projects and not any(CODEBUILD_PROJECT_NAME.match(name) for name in projects):
            Tier.objects.filter(pk=tier.pk).update(allowed_builders=["LOCAL"])
    Tier.objects.update(version=F("version") + 1)


class Migration(migrations.Migration):

    dependencies = [
        ('tenants', '0005_seal_context_and_secrets_inside_json_strings'),
    ]

    operations = [
        migrations.AddField(
            model_name='tier',
            name='allowed_builders',
            field=models.JSONField(default=tenants.models.default_allowed_builders, help_text='Builders an event may choose for this tier (builderConfig.type). LOCAL runs the projects on the worker: they must be commands listed in LOCAL_BUILD_COMMANDS.'),
        ),
        migrations.AlterField(
            model_name='tiervariable',
            name='name',
            field=models.CharField(max_length=255, validators=[django.core.validators.RegexValidator('^[A-Za-z_][A-Za-z0-9_]*$', 'Letters, digits and underscores; not starting with a digit.'), django.core.validators.RegexValidator('^(?!CODEBUILD_)', 'Names starting with CODEBUILD_ are reserved by CodeBuild.'), django.core.validators.RegexValidator('^(?!(tier|jobName|deprovisionJobName|version|allowedBuilders)$)', 'Reserved for the tier item in DynamoDB.')]),
        ),
        migrations.RunPython(allow_what_each_tier_could_run, migrations.RunPython.noop),
    ]
