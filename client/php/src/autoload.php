<?php
// Loads the sessiontoken PHP client without Composer: require __DIR__ . '/src/autoload.php'.
declare(strict_types=1);

require_once __DIR__ . '/ServiceError.php';
require_once __DIR__ . '/Client.php';
require_once __DIR__ . '/SessionHandler.php';
