"""The Hugging Face tasks beyond chat: :class:`TaskClient` (every task of the router, the method
names and parameters of huggingface_hub's ``AsyncInferenceClient``), their results, and the
``(provider, task)`` table of routes (:data:`ROUTES`), shared with embeddings."""

from hfdriver.tasks._client import TaskClient
from hfdriver.tasks._media import Media, sniff
from hfdriver.tasks._providers import ROUTES, TaskRoute, providers_for
from hfdriver.tasks._results import (
    AudioClassificationOutputElement,
    AudioToAudioOutputElement,
    AutomaticSpeechRecognitionOutput,
    AutomaticSpeechRecognitionOutputChunk,
    DocumentQuestionAnsweringOutputElement,
    FillMaskOutputElement,
    ImageClassificationOutputElement,
    ImageSegmentationOutputElement,
    ImageToTextOutput,
    ObjectDetectionBoundingBox,
    ObjectDetectionOutputElement,
    QuestionAnsweringOutputElement,
    SummarizationOutput,
    TableQuestionAnsweringOutputElement,
    TextClassificationOutputElement,
    TextGenerationOutput,
    TextGenerationStreamOutput,
    TextGenerationStreamOutputToken,
    TokenClassificationOutputElement,
    TranslationOutput,
    VisualQuestionAnsweringOutputElement,
    ZeroShotClassificationOutputElement,
    ZeroShotImageClassificationOutputElement,
)
from hfdriver.tasks._spec import TASKS, Task

__all__ = [
    "ROUTES",
    "TASKS",
    "AudioClassificationOutputElement",
    "AudioToAudioOutputElement",
    "AutomaticSpeechRecognitionOutput",
    "AutomaticSpeechRecognitionOutputChunk",
    "DocumentQuestionAnsweringOutputElement",
    "FillMaskOutputElement",
    "ImageClassificationOutputElement",
    "ImageSegmentationOutputElement",
    "ImageToTextOutput",
    "Media",
    "ObjectDetectionBoundingBox",
    "ObjectDetectionOutputElement",
    "QuestionAnsweringOutputElement",
    "SummarizationOutput",
    "TableQuestionAnsweringOutputElement",
    "Task",
    "TaskClient",
    "TaskRoute",
    "TextClassificationOutputElement",
    "TextGenerationOutput",
    "TextGenerationStreamOutput",
    "TextGenerationStreamOutputToken",
    "TokenClassificationOutputElement",
    "TranslationOutput",
    "VisualQuestionAnsweringOutputElement",
    "ZeroShotClassificationOutputElement",
    "ZeroShotImageClassificationOutputElement",
    "providers_for",
    "sniff",
]
