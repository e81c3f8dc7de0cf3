<?php
// An error from the sessiontoken HTTP/JSON gateway, or no answer from it.
declare(strict_types=1);

namespace SessionToken;

final class ServiceError extends \RuntimeException
{
    /**
     * @param string $grpcCode   the gateway's code name ("INVALID_ARGUMENT", "UNAVAILABLE"...);
     *                           "UNAVAILABLE" when the gateway could not be reached
     * @param int    $httpStatus the HTTP status, 0 when there was no answer
     */
    public function __construct(
        public readonly string $grpcCode,
        string $message,
        public readonly int $httpStatus = 0
    ) {
        parent::__construct("$grpcCode: $message");
    }
}
