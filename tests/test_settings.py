from pathlib import Path

import pytest

from autoact.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("AUTOACT_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults():
    s = Settings()
    assert s.model == "embedded"
    assert s.sampling.temperature == 0.0
    assert s.adapter_for("plan") == "plan"
    assert s.adapter_for("meta") is None


def test_file_then_env_then_code_precedence(tmp_path, monkeypatch):
    cfg = tmp_path / "autoact.toml"
    cfg.write_text('concurrency = 3\nmodel = "/from/file"\n[sampling]\ntemperature = 0.5\nmax_tokens = 64\n')
    s = Settings()
    assert (s.concurrency, s.model, s.sampling.temperature, s.sampling.max_tokens) == (3, "/from/file", 0.5, 64)

    monkeypatch.setenv("AUTOACT_CONCURRENCY", "5")
    monkeypatch.setenv("AUTOACT_SAMPLING__TEMPERATURE", "0.9")
    s = Settings()
    assert s.concurrency == 5 and s.sampling.temperature == 0.9
    assert s.sampling.max_tokens == 64  # untouched nested field still from the file

    s = load_settings(concurrency=7, model=None)
    assert s.concurrency == 7  # code beats env
    assert s.model == "/from/file"  # None means "not given"


def test_explicit_yaml_config(tmp_path, monkeypatch):
    cfg = tmp_path / "elsewhere.yaml"
    cfg.write_text("run_dir: runs/x\nadapters:\n  plan: p2\n  tool: t2\n")
    s = load_settings(cfg)
    assert s.run_dir == Path("runs/x")
    assert s.adapter_for("plan") == "p2" and s.adapter_for("reflect") is None


def test_role_sampling_override():
    s = Settings(role_sampling={"tool": {"max_tokens": 16, "stop": ["\n"]}})
    assert s.sampling_for("tool").max_tokens == 16
    assert s.sampling_for("tool").stop == ["\n"]
    assert s.sampling_for("plan").max_tokens == s.sampling.max_tokens


def test_bad_values_are_refused(monkeypatch):
    with pytest.raises(ValueError):
        Settings(adapters={"planner": "x"})
    with pytest.raises(ValueError):
        Settings(concurrency=0)
    monkeypatch.setenv("AUTOACT_CONFIG", "/no/such/file.toml")
    with pytest.raises(FileNotFoundError):
        Settings()


def test_paper_profile_sets_the_published_recipe(repo_root):
    from autoact.app.pipeline import PipelineConfig, _synthesis_config, finetune_config

    settings = load_settings(repo_root / "configs" / "paper.toml")
    s = settings.sampling
    assert (s.temperature, s.top_p, s.top_k) == (0.5, 0.75, 40)  # inference sampling
    learn = settings.learn
    assert learn.max_steps == 15 and learn.eval_max_steps == 10 and learn.max_kept == 200
    assert learn.sample_temperature == 0.9 and learn.greedy_first is False and learn.rounds == 1
    synth = _synthesis_config(PipelineConfig(task="hotpotqa", learn=learn), settings)
    assert (synth.max_steps, synth.max_kept, synth.sample_temperature, synth.greedy_first) == (15, 200, 0.9, False)
    assert synth.min_reward == 1.0 and synth.rationalize is False
    train = finetune_config(learn)
    assert (train.lora_r, train.lora_alpha, train.lora_dropout) == (8, 16, 0.05)
    assert train.target_modules == ["q_proj", "v_proj"] and train.lora_layers is None  # every layer
    assert (train.learning_rate, train.epochs, train.lr_scheduler, train.warmup_ratio) == (1e-4, 5, "cosine", 0.03)
    # the CPU defaults differ where the README says so
    cpu = Settings().learn
    assert cpu.max_steps == 4 and cpu.epochs == 2 and cpu.lora_layers == 8 and cpu.greedy_first is True
    assert cpu.learning_rate == 1e-3  # the paper's 1e-4 under-fits the few steps small data gives (README)


def test_demo_flags_set_the_learn_sizes(tmp_path):
    from autoact.app.cli import build_parser, learn_settings, settings_from_args

    args = build_parser().parse_args(["demo", "--run", str(tmp_path), "--learning-rate", "5e-4", "--epochs", "3",
                                      "--all-layers", "--instances", "12"])
    learn = learn_settings(settings_from_args(args), args)
    assert (learn.learning_rate, learn.epochs, learn.lora_layers, learn.instances) == (5e-4, 3.0, 0, 12)
    assert learn.samples == Settings().learn.samples  # flags not given keep the settings' value


def test_learn_with_task_questions_passes_the_training_file_to_synthesis(tmp_path):
    from autoact.app.cli import build_parser, pipeline_config
    from autoact.app.pipeline import _synthesis_config

    def synthesis_of(argv):
        args = build_parser().parse_args(argv)
        return _synthesis_config(pipeline_config(args, Settings(), args.task), Settings())

    given = synthesis_of(["learn", "--task", "hotpotqa", "--task-questions", "--train-data", "t.jsonl"])
    assert (given.task, given.instances, given.train_data) == ("hotpotqa", "task", "t.jsonl")
    assert synthesis_of(["learn", "--task", "hotpotqa"]).instances == "self-instruct"


# ---- one-line errors naming the source, the key and the expectation ---------------------------------------
def test_a_misspelled_key_names_the_file_and_the_closest_key(tmp_path):
    cfg = tmp_path / "autoact.toml"
    cfg.write_text("[sampling]\ntemprature = 0.5\n")
    with pytest.raises(SettingsError) as caught:
        Settings()
    assert str(caught.value) == "autoact.toml: unknown setting sampling.temprature (did you mean sampling.temperature?)"
    cfg.write_text("concurency = 3\n")
    with pytest.raises(SettingsError, match=r"^autoact\.toml: unknown setting concurency "
                                            r"\(did you mean concurrency\?\)$"):
        Settings()


def test_a_wrong_type_is_one_line_naming_file_key_type_and_value(tmp_path):
    cfg = tmp_path / "conf.toml"
    cfg.write_text('[sampling]\ntemperature = "hot"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(cfg)
    assert str(caught.value) == f"{cfg}: sampling.temperature expects float, got 'hot'"
    cfg.write_text("[sampling]\ntemperature = 5\n")  # the right type out of range says which range
    with pytest.raises(SettingsError) as caught:
        load_settings(cfg)
    assert str(caught.value) == f"{cfg}: sampling.temperature expects float (less than or equal to 2), got 5"
    assert "\n" not in str(caught.value)


def test_syntax_errors_name_the_file_and_the_line(tmp_path):
    toml = tmp_path / "broken.toml"
    toml.write_text("concurrency = 3\n[sampling\ntemperature = 0.5\n")
    with pytest.raises(SettingsError, match=r"^.*broken\.toml: not valid TOML: .*line 2"):
        load_settings(toml)
    yml = tmp_path / "broken.yaml"
    yml.write_text("sampling:\n  temperature: [0.5\nconcurrency: 3\n")
    with pytest.raises(SettingsError, match=r"^.*broken\.yaml: not valid YAML at line 3"):
        load_settings(yml)


def test_bad_environment_variables_are_named(monkeypatch):
    monkeypatch.setenv("AUTOACT_SAMPLING__TEMPERATURE", "hot")
    with pytest.raises(SettingsError) as caught:
        Settings()
    assert str(caught.value) == (
        "environment variable AUTOACT_SAMPLING__TEMPERATURE: sampling.temperature expects float, got 'hot'")
    monkeypatch.delenv("AUTOACT_SAMPLING__TEMPERATURE")
    monkeypatch.setenv("AUTOACT_SAMPLING__TOPP", "0.5")
    with pytest.raises(SettingsError, match=r"^environment variable AUTOACT_SAMPLING__TOPP: unknown setting "
                                            r"sampling\.topp \(did you mean sampling\.top_p\?\)$"):
        Settings()
    monkeypatch.delenv("AUTOACT_SAMPLING__TOPP")
    monkeypatch.setenv("AUTOACT_SAMPLING__STOP", "Observation")  # a list is written as JSON
    with pytest.raises(SettingsError, match=r"^environment variable AUTOACT_SAMPLING__STOP='Observation': "):
        Settings()
    monkeypatch.delenv("AUTOACT_SAMPLING__STOP")
    monkeypatch.setenv("AUTOACT_CONFIG", "/no/such/file.toml")
    with pytest.raises(FileNotFoundError, match=r"named by \$AUTOACT_CONFIG"):
        Settings()


def test_the_error_names_the_source_that_gave_the_value(tmp_path, monkeypatch):
    (tmp_path / "autoact.toml").write_text("concurrency = 0\n")
    with pytest.raises(SettingsError, match=r"^autoact\.toml: concurrency expects int \(greater than or equal to 1\)"):
        Settings()
    monkeypatch.setenv("AUTOACT_CONCURRENCY", "-1")  # the environment beats the file
    with pytest.raises(SettingsError, match=r"^environment variable AUTOACT_CONCURRENCY: .*got '-1'$"):
        Settings()
    with pytest.raises(SettingsError, match=r"^concurrency expects int .*got 0$"):  # code beats both
        Settings(concurrency=0)


def test_role_sampling_keys_are_checked(tmp_path):
    (tmp_path / "autoact.toml").write_text("[role_sampling.tool]\nmax_tokns = 16\n")
    with pytest.raises(SettingsError, match=r"^autoact\.toml: role_sampling: unknown sampling field tool\.max_tokns "
                                            r"\(did you mean max_tokens\?\)$"):
        Settings()
    (tmp_path / "autoact.toml").unlink()
    with pytest.raises(SettingsError, match="unknown role 'planner'"):
        Settings(role_sampling={"planner": {"max_tokens": 16}})
