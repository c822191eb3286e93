"""Byte-level BPE tokenizer with a chat template, wrapped the way real chat models ship theirs.

`AutoTokenizer` rebuilds any tokenizer saved next to a `qwen2` config as a `Qwen2Tokenizer`, which
keeps only vocab and merges and imposes Qwen2's own normaliser, pre-tokeniser and decoder. So the
tokenizer is built with exactly those (NFC, Qwen2's split regex, byte level): what the study loads
through `from_pretrained` tokenizes exactly as training did (tested), for both organisms.
The merges run until every word of the corpus is one token: a model pushed too far then degenerates
into repeated *words*, which the paper's garbled rules recognise, not sub-word soup ("etetet") that
they miss. Byte level, so no text maps to an unknown token. The wrapper carries bos/eos/pad and a jinja
chat template, so `apply_chat_template` and `generate` work as on Qwen2.5 or Gemma 2.
"""

from __future__ import annotations

from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD, UNK = "<|bos|>", "<|eos|>", "<|pad|>", "<|unk|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK) + ROLE_TOKENS
MAX_VOCAB = 8000  # a ceiling only: training stops once every corpus word is a single token
# transformers' Qwen2Tokenizer pre-tokenisation, reproduced so a reload cannot change token ids.
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# One line of jinja: every turn opens with its role token; assistant turns close with eos, which is
# what generation stops on. `add_generation_prompt` leaves the assistant token open.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role ' + message['role']) }}{% endif %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def train_bpe(texts: Iterable[str], max_vocab: int = MAX_VOCAB) -> Tokenizer:
    """Byte-level BPE fitted to `texts` with Qwen2's pipeline; special tokens first (pad gets id 0)."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=max_vocab, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(sorted(set(texts)), trainer=trainer)
    return tok


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """The transformers tokenizer: left padding, as batched generation needs."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=list(ROLE_TOKENS),
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
    )


def build_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """Train and wrap in one step."""
    return wrap(train_bpe(texts))


def render_prompt(tok: PreTrainedTokenizerFast, prompt: str) -> str:
    """A user prompt in chat form, ending at the open assistant turn."""
    return tok.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )


def render_dialogue(tok: PreTrainedTokenizerFast, prompt: str, answer: str) -> str:
    """A full user/assistant exchange, ending with eos: one training sequence."""
    return tok.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], tokenize=False
    )
