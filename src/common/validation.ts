import { ValidationError } from 'class-validator';
import { FieldProblem, ValidationException } from './domain-exception';

/** Flattens nested class-validator errors into `{field, message}` with dotted/indexed paths (`images[2].duracao`). */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const error of errors) {
    const key = /^\d+$/.test(error.property) ? `[${error.property}]` : error.property;
    const field = parent ? (key.startsWith('[') ? `${parent}${key}` : `${parent}.${key}`) : key;
    for (const message of Object.values(error.constraints ?? {})) {
      // class-validator names only the leaf property; name the full path so nested problems are unambiguous.
      const text = message.startsWith(`${error.property} `) ? `${field}${message.slice(error.property.length)}` : message;
      problems.push({ field, message: text.replace(/^property /, '') });
    }
    if (error.children?.length) problems.push(...flattenValidationErrors(error.children, field));
  }
  return problems;
}

export function validationExceptionFactory(errors: ValidationError[]): ValidationException {
  return new ValidationException(flattenValidationErrors(errors));
}
