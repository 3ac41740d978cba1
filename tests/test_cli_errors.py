"""Every user mistake is one line, ``tinygrad-llm: error: <message>``, and exit status 2.

Most cases call ``cli.main`` in-process (fast); a few run the real command to check the exit
status and that no traceback reaches the terminal. ``--debug`` / TINYGRAD_LLM_DEBUG=1 add it.
"""
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_llm import checkpoint as ck
from tinygrad_llm import cli
from tinygrad_llm.data import CharTokenizer
from tinygrad_llm.models import GPT, GPTConfig

TEXT = "the cat sat on the mat. the dog sat on the log. " * 20
TINY = ["--tokenizer", "char", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
        "--block-size", "16", "--batch-size", "4", "--no-progress", "--max-new-tokens", "5",
        "--eval-interval", "0"]


def error_of(capsys, argv, status=2):
    """Run the CLI; check the exit status and that stderr is one error line; return it."""
    assert cli.main(argv) == status
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinygrad-llm: error: "), err
    return lines[0][len("tinygrad-llm: error: "):]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture
def checkpoint(tmp_path):
    """A checkpoint folder of an untrained tiny GPT with a char tokenizer (no training)."""
    tok = CharTokenizer.from_corpus(TEXT)
    model = GPT(GPTConfig(block_size=16, vocab_size=tok.vocab_size, n_layer=1, n_head=2,
                          n_embd=16))
    return ck.save_checkpoint(tmp_path / "ckpt", model, tokenizer=tok,
                              model_config=model.config_dict()), model, tok


@pytest.mark.parametrize("flags, message", [
    (["--steps", "-3"], "--steps must be an integer >= 1, got -3"),
    (["--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["--lr", "-0.001"], "--lr must be a number > 0, got -0.001"),
    (["--lr", "nan"], "--lr must be a number > 0, got nan"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
    (["--block-size", "-1"], "--block-size must be an integer >= 1, got -1"),
    (["--n-layer", "0"], "--n-layer must be an integer >= 1, got 0"),
    (["--n-embd", "30", "--n-head", "4"], "--n-embd (30) must be divisible by --n-head (4)"),
    (["--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
    (["--warmup", "-1"], "--warmup must be an integer >= 0, got -1"),
    (["--temperature", "-1"], "--temperature must be a number >= 0 (0: greedy), got -1.0"),
    (["--max-chars", "0"], "--max-chars must be an integer >= 1, got 0"),
    (["--tokenizer", "bpe", "--vocab-size", "100"], "--vocab-size must be at least 264"),
    (["--encoding", "klingon"], "--encoding 'klingon' is not a known text encoding"),
    (["--encoding", "rot13"], "--encoding 'rot13' is not a known text encoding"),
    (["--steps", "ten"], "argument --steps: invalid int value: 'ten'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_train_arguments_are_one_line_before_any_work(capsys, tmp_path, text_file, flags,
                                                          message):
    out = tmp_path / "run"
    line = error_of(capsys, ["train", "--data", str(text_file), "--out", str(out), *TINY,
                             *flags])
    assert line.startswith(message)
    assert not out.exists()                         # nothing was done


def test_missing_data_empty_folder_and_empty_text(capsys, tmp_path):
    run = ["--out", str(tmp_path / "run"), *TINY]
    missing = tmp_path / "nope.txt"
    assert error_of(capsys, ["train", "--data", str(missing), *run]) == \
        f"--data {missing}: no such file or folder"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("not a .txt file")
    assert error_of(capsys, ["train", "--data", str(tmp_path / "empty"), *run]) == \
        f"--data {tmp_path / 'empty'}: the folder holds no .txt files"
    (tmp_path / "blank.txt").write_text(" \n\n ")
    assert error_of(capsys, ["train", "--data", str(tmp_path / "blank.txt"), *run]) == \
        f"--data {tmp_path / 'blank.txt'}: the text is empty"


def test_a_binary_file_names_the_file_and_byte_offset(capsys, tmp_path):
    data = tmp_path / "model.bin"
    data.write_bytes(b"plain text first\nthen \xff\xfe binary")
    line = error_of(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "r"), *TINY])
    assert line == (f"{data}: not valid utf-8 text at byte offset 22 (line 2, byte 0xff); if "
                    f"the file is text in another encoding, pass --encoding (e.g. --encoding "
                    f"latin-1)")
    data.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00\xa0")
    line = error_of(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "r"), *TINY])
    assert line == (f"{data}: not valid utf-8 text at byte offset 10 (line 1, byte 0xa0); it "
                    f"looks like a binary file, not text (it holds NUL bytes); if it is UTF-16 "
                    f"text, pass --encoding utf-16")


def test_encoding_flag_reads_a_latin1_file(capsys, tmp_path):
    data = tmp_path / "latin1.txt"
    data.write_bytes((TEXT + "café crème\n").encode("latin-1"))
    assert cli.main(["train", "--data", str(data), "--out", str(tmp_path / "r"), *TINY,
                     "--steps", "1", "--encoding", "latin-1", "--prompt", "caf"]) == 0
    assert "corpus: " in capsys.readouterr().out


def test_text_too_short_for_the_block_size(capsys, tmp_path):
    data = tmp_path / "short.txt"
    data.write_text("hello world, this is short")
    line = error_of(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "r"),
                             *TINY, "--block-size", "64"])
    assert line == (f"--data {data} has 26 characters, too few for --block-size 64 (a 90/10 "
                    f"training/validation split needs at least 660 tokens): use a longer text "
                    f"or a smaller --block-size")


def test_out_is_a_file(capsys, tmp_path, text_file):
    line = error_of(capsys, ["train", "--data", str(text_file), "--out", str(text_file), *TINY])
    assert line == f"--out {text_file} is a file; give a folder for the run"


def test_resume_with_other_model_flags_names_them(capsys, tmp_path, text_file, checkpoint):
    out = tmp_path / "run"
    folder, model, tok = checkpoint
    ck.save_checkpoint(out / "checkpoint", model, tokenizer=tok,
                       model_config=model.config_dict())
    line = error_of(capsys, ["train", "--data", str(text_file), "--out", str(out), *TINY,
                             "--n-layer", "2", "--n-embd", "32", "--resume"])
    assert line == (f"--resume: the checkpoint in {out / 'checkpoint'} was trained with "
                    f"--n-layer 1 --n-embd 16; pass the same values (or another --out)")
    line = error_of(capsys, ["train", "--data", str(text_file), "--out", str(out), *TINY,
                             "--tokenizer", "bpe", "--resume"])
    assert line.endswith("uses --tokenizer char; pass the same value (or another --out)")


def test_missing_or_truncated_checkpoint_and_empty_prompt(capsys, tmp_path, checkpoint):
    folder = checkpoint[0]
    missing = tmp_path / "nowhere"
    assert error_of(capsys, ["generate", "--checkpoint", str(missing)]) == \
        f"--checkpoint {missing}: no checkpoint folder there (train writes one to " \
        f"<--out>/checkpoint)"
    assert error_of(capsys, ["generate", "--checkpoint", folder, "--prompt", ""]) == \
        "--prompt is empty: give at least one character to continue from"
    path = f"{folder}/{ck.MODEL_FILE}"
    with open(path, "r+b") as f:
        f.truncate(100)
    line = error_of(capsys, ["generate", "--checkpoint", folder])
    assert line.startswith(f"--checkpoint {folder}: cannot load it: {path} is not a valid "
                           f"safetensors file (truncated or corrupted?)")
    line = error_of(capsys, ["evaluate", "--checkpoint", folder])
    assert "is not a valid safetensors file" in line
    empty = tmp_path / "empty_ckpt"
    empty.mkdir()
    line = error_of(capsys, ["generate", "--checkpoint", str(empty)])
    assert line.startswith(f"--checkpoint {empty}: cannot load it: checkpoint file not found")


def test_debug_flag_and_environment_variable_show_the_traceback(capsys, monkeypatch, tmp_path):
    argv = ["train", "--data", str(tmp_path / "nope.txt"), "--steps", "1"]
    for args in (["--debug", *argv], [*argv, "--debug"]):
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and err.strip().splitlines()[-1].startswith(
            "tinygrad-llm: error: --data")
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    assert cli.main(argv) == 2
    assert "Traceback" in capsys.readouterr().err


def test_the_real_command_exits_2_without_a_traceback(tmp_path):
    data = tmp_path / "binary.txt"
    data.write_bytes(bytes(range(256)))
    for args in (["train", "--steps", "-3"], ["train", "--data", str(data)],
                 ["generate", "--checkpoint", str(tmp_path / "none")]):
        out = subprocess.run([sys.executable, "-m", "tinygrad_llm.cli", *args,
                              "--out" if args[0] == "train" else "--seed",
                              str(tmp_path / "run") if args[0] == "train" else "0"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 2, out.stderr
        assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert out.stderr.startswith("tinygrad-llm: error: ") and "Traceback" not in out.stderr


# ----- generation never prints special tokens the model did not learn as text ---------------

def cls_loving_checkpoint(folder):
    """A GPT that, untrained, puts almost all probability on [CLS]."""
    tok = CharTokenizer.from_corpus(TEXT)
    model = GPT(GPTConfig(block_size=16, vocab_size=tok.vocab_size, n_layer=1, n_head=2,
                          n_embd=16))
    ln_f = model.transformer.ln_f
    ln_f.weight.data[...] = 0                          # every position's output: ln_f.bias
    ln_f.bias.data[...] = np.linspace(-1, 1, 16)
    model.transformer.wte.weight.data[tok.cls_token_id] = 50 * ln_f.bias.data
    return ck.save_checkpoint(folder, model, tokenizer=tok, model_config=model.config_dict())


@pytest.mark.parametrize("temperature", ["0", "1.0"])
def test_generate_never_emits_special_tokens(capsys, tmp_path, temperature):
    folder = cls_loving_checkpoint(tmp_path / "ckpt")
    assert cli.main(["generate", "--checkpoint", folder, "--prompt", "the ",
                     "--max-new-tokens", "12", "--temperature", temperature]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the ") and len(out.rstrip("\n")) == 4 + 12
    for special in CharTokenizer("").all_special_tokens:
        assert special not in out


def test_generation_masks_keep_the_specials_seen_in_training():
    tok = CharTokenizer.from_corpus(TEXT)
    suppress, eos = cli.generation_masks(tok)
    assert sorted(suppress) == sorted(tok.all_special_ids) and eos is None
    suppress, eos = cli.generation_masks(tok, [tok.eos_token_id, tok.sep_token_id])
    assert eos == tok.eos_token_id
    assert tok.eos_token_id not in suppress and tok.sep_token_id not in suppress
    assert tok.cls_token_id in suppress


def test_a_gpt2_folder_stops_at_its_eos_without_printing_it(capsys, tmp_path):
    from tinygrad_llm.data import ByteLevelBPETokenizer
    from tinygrad_llm.models.gpt2_hf import save_gpt2_folder
    tok = ByteLevelBPETokenizer.train(TEXT, vocab_size=280)
    model = GPT(GPTConfig(block_size=16, vocab_size=tok.vocab_size, n_layer=1, n_head=2,
                          n_embd=16))
    ln_f = model.transformer.ln_f
    ln_f.weight.data[...] = 0
    ln_f.bias.data[...] = np.linspace(-1, 1, 16)
    model.transformer.wte.weight.data[tok.vocab["<|endoftext|>"]] = 50 * ln_f.bias.data
    save_gpt2_folder(model, str(tmp_path / "gpt2"), tok)
    assert cli.main(["generate", "--checkpoint", str(tmp_path / "gpt2"), "--prompt", "the",
                     "--temperature", "0", "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out == "the\n"


def test_evaluate_on_a_text_too_short_for_the_checkpoint(capsys, tmp_path, checkpoint):
    data = tmp_path / "short.txt"
    data.write_text("the cat")
    line = error_of(capsys, ["evaluate", "--checkpoint", checkpoint[0], "--data", str(data)])
    assert line == (f"--data {data} has 7 tokens, too few for the checkpoint's block size 16 "
                    f"(a 90/10 training/validation split needs at least 180 tokens): use a "
                    f"longer text or another checkpoint")


def test_a_full_disk_outside_checkpoints_is_one_line_exit_1(capsys, monkeypatch):
    import errno

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/gpt/log.jsonl")
    monkeypatch.setattr(cli, "cmd_bench", full)
    assert error_of(capsys, ["bench"], status=1) == \
        "No space left on device: runs/gpt/log.jsonl"
